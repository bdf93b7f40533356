//! `torch.optim.SGD`, `Adam` and `AdamW` whose momentum (SGD) or beta1 (Adam, AdamW) can change
//! between steps, for OneCycleLR / CyclicLR momentum cycling.
//!
//! Burn 0.22's optimizers fix momentum at construction (and keep SGD's as `f32`), so these are
//! Burn [`Optimizer`]s of our own, with PyTorch's formulas in `f64` scalars, reading the current
//! momentum from a shared [`MomentumHandle`] at every step. They are what
//! [`OptimizerConfig::init`](crate::OptimizerConfig::init) and
//! [`OptimizerConfig::init_with_momentum`](crate::OptimizerConfig::init_with_momentum) build,
//! wrapped in Burn's type-erased [`ModuleOptimizer`](burn::optim::ModuleOptimizer); their state
//! goes through `ModuleOptimizer::into_bytes`/`from_bytes` like Burn's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};
use kindling_schedulers::Scheduler;

/// The current momentum (SGD) or beta1 (Adam, AdamW) of an optimizer made by
/// [`OptimizerConfig::init_with_momentum`](crate::OptimizerConfig::init_with_momentum), shared
/// with it: set it before `optimizer.step(..)` and that step uses it.
///
/// It starts at the configured `momentum` (SGD) or `betas[0]` (Adam, AdamW). Clones share the
/// value. It is not part of the optimizer's checkpoint: the schedule's position is (set the
/// handle from the restored scheduler before the next step).
///
/// ```
/// use kindling_schedulers::{OneCycleLr, Scheduler};
/// use kindling_run::{OptimizerConfig, OptimizerKind};
///
/// let cfg = OptimizerConfig { name: OptimizerKind::Sgd, ..OptimizerConfig::default() };
/// let (_optimizer, momentum) = cfg.init_with_momentum();
/// assert_eq!(momentum.get(), cfg.momentum);
/// let sched = Scheduler::new(OneCycleLr::new(0.1, 100), cfg.lr);
/// momentum.follow(&sched); // before each optimizer.step(sched.lr(), model, grads)
/// assert_eq!(momentum.get(), 0.95);
/// ```
#[derive(Debug, Clone)]
pub struct MomentumHandle(Arc<AtomicU64>);

impl MomentumHandle {
    /// A handle holding `momentum`.
    pub fn new(momentum: f64) -> Self {
        Self(Arc::new(AtomicU64::new(momentum.to_bits())))
    }

    /// Sets the momentum (beta1) of the following steps.
    pub fn set(&self, momentum: f64) {
        self.0.store(momentum.to_bits(), Ordering::Relaxed);
    }

    /// The current momentum (beta1).
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets the momentum the scheduler's policy has set (PyTorch's `param_group['momentum']` or
    /// `betas[0]`); leaves it unchanged when the schedule does not cycle momentum.
    pub fn follow(&self, scheduler: &Scheduler) {
        if let Some(m) = scheduler.momentum() {
            self.set(m);
        }
    }
}

/// `torch.optim.SGD` (single-tensor path): L2 `weight_decay` added to the gradient; momentum
/// buffer started from the first gradient, then `buf = momentum * buf + (1 - dampening) * g`;
/// Nesterov `g + momentum * buf`; no buffer while momentum is 0.
#[derive(Debug, Clone)]
pub(crate) struct TorchSgd {
    pub momentum: MomentumHandle,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

/// [`TorchSgd`]'s per-parameter state: PyTorch's `momentum_buffer`.
#[derive(Clone)]
pub(crate) struct TorchSgdState<const D: usize> {
    momentum_buffer: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for TorchSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(buf) = &self.momentum_buffer {
            out.push_tensor(prefix, "momentum_buffer", buf.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        Some(Self {
            momentum_buffer: src
                .take_tensor(prefix, "momentum_buffer")
                .map(|data| Tensor::from_data(data, device)),
        })
    }
}

impl Optimizer for TorchSgd {
    type State<const D: usize> = TorchSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let momentum = self.momentum.get();
        if self.weight_decay != 0.0 {
            grad = grad + tensor.clone().mul_scalar(self.weight_decay);
        }
        let mut buffer = state.and_then(|s| s.momentum_buffer);
        if momentum != 0.0 {
            let buf = match buffer {
                None => grad.clone(),
                Some(buf) => {
                    buf.mul_scalar(momentum) + grad.clone().mul_scalar(1.0 - self.dampening)
                }
            };
            grad = if self.nesterov {
                grad + buf.clone().mul_scalar(momentum)
            } else {
                buf.clone()
            };
            buffer = Some(buf);
        }
        let tensor = tensor - grad.mul_scalar(lr);
        (
            tensor,
            Some(TorchSgdState {
                momentum_buffer: buffer,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        TorchSgdState {
            momentum_buffer: state.momentum_buffer.map(|t| t.to_device(device)),
        }
    }
}

/// `torch.optim.Adam` / `AdamW` (single-tensor path, no amsgrad): Adam adds the L2
/// `weight_decay` to the gradient, AdamW first scales the parameter by `1 - lr * weight_decay`;
/// `m = lerp(m, g, 1 - beta1)`, `v = beta2 * v + (1 - beta2) * g²`, then
/// `p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`, with the current beta1 in
/// the bias correction, as PyTorch.
#[derive(Debug, Clone)]
pub(crate) struct TorchAdam {
    pub beta1: MomentumHandle,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW's decoupled decay.
    pub decoupled: bool,
}

/// [`TorchAdam`]'s per-parameter state: PyTorch's `step`, `exp_avg`, `exp_avg_sq`.
#[derive(Clone)]
pub(crate) struct TorchAdamState<const D: usize> {
    step: u64,
    exp_avg: Tensor<D>,
    exp_avg_sq: Tensor<D>,
}

impl<const D: usize> RecordState for TorchAdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", self.step.into());
        out.push_tensor(prefix, "exp_avg", self.exp_avg.clone().into_data());
        out.push_tensor(prefix, "exp_avg_sq", self.exp_avg_sq.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let step = u64::try_from(src.take_scalar(prefix, "step")?).ok()?;
        let exp_avg = Tensor::from_data(src.take_tensor(prefix, "exp_avg")?, device);
        let exp_avg_sq = Tensor::from_data(src.take_tensor(prefix, "exp_avg_sq")?, device);
        Some(Self {
            step,
            exp_avg,
            exp_avg_sq,
        })
    }
}

/// ATen's `lerp(start, end, weight)`, in its two branches.
fn lerp<const D: usize>(start: Tensor<D>, end: Tensor<D>, weight: f64) -> Tensor<D> {
    if weight.abs() < 0.5 {
        start.clone() + (end - start).mul_scalar(weight)
    } else {
        end.clone() - (end - start).mul_scalar(1.0 - weight)
    }
}

impl Optimizer for TorchAdam {
    type State<const D: usize> = TorchAdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        mut tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let beta1 = self.beta1.get();
        let (step, exp_avg, exp_avg_sq) = match state {
            Some(s) => (s.step + 1, s.exp_avg, s.exp_avg_sq),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        if self.weight_decay != 0.0 {
            if self.decoupled {
                tensor = tensor.mul_scalar(1.0 - lr * self.weight_decay);
            } else {
                grad = grad + tensor.clone().mul_scalar(self.weight_decay);
            }
        }
        let exp_avg = lerp(exp_avg, grad.clone(), 1.0 - beta1);
        let exp_avg_sq =
            exp_avg_sq.mul_scalar(self.beta2) + (grad.clone() * grad).mul_scalar(1.0 - self.beta2);
        // PyTorch reads the step count back as a Python float: `beta ** step` is `pow`.
        let t = step as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - self.beta2.powf(t);
        let step_size = lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.powf(0.5);
        let denom = exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(bias_correction2_sqrt)
            .add_scalar(self.eps);
        // `param.addcdiv_(exp_avg, denom, value=-step_size)`: p + (-step_size * m) / denom.
        let tensor = tensor - exp_avg.clone().mul_scalar(step_size).div(denom);
        (
            tensor,
            Some(TorchAdamState {
                step,
                exp_avg,
                exp_avg_sq,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        TorchAdamState {
            step: state.step,
            exp_avg: state.exp_avg.to_device(device),
            exp_avg_sq: state.exp_avg_sq.to_device(device),
        }
    }
}
