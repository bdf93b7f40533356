//! Master weights (apex's O2) for **any** Burn module — a user's own model of Burn's layers or
//! an ONNX import, which do not follow [`autocast`](crate::autocast): the whole forward and
//! backward run on an f16/bf16 working copy, the optimizer steps the f32 master parameters.
//!
//! The working copy's parameters are casts of the master's (same [`ParamId`]s), so backward
//! through them gives the master's parameters f32 gradients directly:
//!
//! ```
//! use burn::module::Module;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::{GradientsParams, Optimizer, SgdConfig};
//! use burn::tensor::{DType, Device, FloatDType, Tensor};
//! use kindling_precision::MasterWeights;
//!
//! let device = Device::flex().autodiff();
//! let mut master = LinearConfig::new(4, 2).init(&device);
//! let mut optimizer = SgdConfig::new().init();
//! let o2 = MasterWeights::new(FloatDType::F16);
//! let working = o2.working(&master);
//! let y = working.forward(o2.input(Tensor::<2>::ones([3, 4], &device)));
//! assert_eq!(y.dtype(), DType::F16);
//! let loss = y.cast(FloatDType::F32).powi_scalar(2).mean();
//! let grads = GradientsParams::from_grads(loss.backward(), &master);
//! master = o2.restore(optimizer.step(0.1, master, grads));
//! assert_eq!(master.weight.val().dtype(), DType::F32);
//! ```
//!
//! Burn keeps a module's BatchNorm running statistics in one place shared by every clone, so
//! the working copy's statistics are the master's: by default they are cast to the low dtype
//! for the step, Burn's BatchNorm updates them there, and [`MasterWeights::restore`] stores
//! them back in f32 after it. apex keeps BatchNorm in f32 throughout (`keep_batchnorm_fp32`),
//! which needs a BatchNorm that takes low-precision input with f32 parameters: Kindling's
//! own does, and [`MasterWeights::keep_batchnorm_f32`] leaves such BatchNorms in f32 (their
//! statistics then never round to f16, whose variances below 6e-5 lose precision and below
//! 6e-8 become 0). Combine with a [`GradScaler`](crate::GradScaler) for f16.
//!
//! [`ParamId`]: burn::module::ParamId

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{FloatDType, Tensor};

use crate::autocast::{autocast_dtype, count_low_input, to_dtype};

/// The container type Burn's derive names a BatchNorm's fields with — Burn's BatchNorm and
/// Kindling's alike (Kindling's keeps the name so burn-store's PyTorch adapter maps its keys).
const BATCHNORM: &str = "Struct:BatchNorm";

/// Casts every float tensor of a module, or every one outside its BatchNorms.
struct Caster {
    dtype: FloatDType,
    skip_batchnorm: bool,
    /// The container type of each module being mapped, innermost last.
    containers: Vec<String>,
}

impl Caster {
    fn new(dtype: FloatDType, skip_batchnorm: bool) -> Self {
        Self {
            dtype,
            skip_batchnorm,
            containers: Vec::new(),
        }
    }
}

impl ModuleMapper for Caster {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.skip_batchnorm && self.containers.last().is_some_and(|c| c == BATCHNORM) {
            return param;
        }
        let dtype = self.dtype;
        param.map(|t| to_dtype(t, dtype.into()))
    }
}

/// Master weights in f32, a working copy in a low dtype (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct MasterWeights {
    dtype: FloatDType,
    keep_batchnorm_f32: bool,
}

impl MasterWeights {
    /// Working copies in `dtype` (f16 or bf16), BatchNorms included.
    pub fn new(dtype: FloatDType) -> Self {
        Self {
            dtype,
            keep_batchnorm_f32: false,
        }
    }

    /// apex's `keep_batchnorm_fp32`: with `keep`, the working copy's BatchNorms keep their f32
    /// parameters and statistics, and normalise the low-precision activations in f32. Only
    /// for a module whose BatchNorms take low-precision input with f32 parameters, such as
    /// `kindling_nn::BatchNorm` (what `import-onnx` writes): Burn's own would combine the f16
    /// input with its f32 statistics in one op, which Burn refuses (Flex panics).
    pub fn keep_batchnorm_f32(self, keep: bool) -> Self {
        Self {
            keep_batchnorm_f32: keep,
            ..self
        }
    }

    /// The working dtype.
    pub fn dtype(&self) -> FloatDType {
        self.dtype
    }

    /// This step's working copy: `master` with every float tensor cast to the working dtype
    /// (those of its BatchNorms kept f32 with [`MasterWeights::keep_batchnorm_f32`]).
    /// Forward and backward run on it; `GradientsParams::from_grads(grads, &master)` then
    /// holds the master's f32 gradients.
    pub fn working<M: Module>(&self, master: &M) -> M {
        sync_running_statistics(master);
        master
            .clone()
            .map(&mut Caster::new(self.dtype, self.keep_batchnorm_f32))
    }

    /// An input in the working dtype.
    pub fn input<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        to_dtype(x, self.dtype.into())
    }

    /// The working dtype of the autocast scope on this thread, if one is active: how a loop
    /// written for autocast runs a model whose layers ignore it (see [`MasterWeights::forward`]).
    pub fn in_scope() -> Option<Self> {
        autocast_dtype().map(Self::new)
    }

    /// One forward pass of `master` through this step's working copy, for a model whose
    /// layers ignore autocast inside a loop written for it: `input` is cast to the working
    /// dtype, the output comes back in f32 (for the loss), and the running statistics the
    /// copy updated are stored back in f32 at once, so that between steps `master` is all f32
    /// (validation, checkpoints, the next copy). Backward through the output gives the
    /// master's parameters their f32 gradients; the optimizer steps `master` as it is.
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::tensor::{DType, Device, FloatDType, Tensor};
    /// use kindling_precision::{MasterWeights, autocast};
    ///
    /// let device = Device::flex().autodiff();
    /// let model = LinearConfig::new(4, 2).init(&device);
    /// let x = Tensor::<2>::ones([3, 4], &device);
    /// let y = autocast(FloatDType::F16, || {
    ///     let o2 = MasterWeights::in_scope().expect("inside the scope");
    ///     o2.forward(&model, x, |m: &Linear, x| m.forward(x))
    /// });
    /// assert_eq!(y.dtype(), DType::F32);
    /// let grads = y.sum().backward();
    /// assert_eq!(model.weight.grad(&grads).unwrap().dtype(), DType::F32);
    /// ```
    pub fn forward<M: Module, const D: usize, const E: usize>(
        &self,
        master: &M,
        input: Tensor<D>,
        forward: impl FnOnce(&M, Tensor<D>) -> Tensor<E>,
    ) -> Tensor<E> {
        count_low_input();
        let working = self.working(master);
        let output = forward(&working, self.input(input));
        // The statistics are shared with `master` (Burn's `RunningState`): this casts them in
        // place; the parameters are f32 already, so their casts are no-ops.
        let _ = self.restore(master.clone());
        to_dtype(output, FloatDType::F32.into())
    }

    /// After the optimizer step: the buffers the copies share (BatchNorm's running
    /// statistics) back in f32; the master's parameters are f32 already.
    pub fn restore<M: Module>(&self, master: M) -> M {
        sync_running_statistics(&master);
        master.map(&mut Caster::new(FloatDType::F32, false))
    }
}

/// Burn's running statistics keep each thread's last update apart until synchronised (which
/// `valid` does); a cast must see the merged value, or the next update mixes dtypes.
fn sync_running_statistics<M: Module>(module: &M) {
    let _ = module.valid();
}
