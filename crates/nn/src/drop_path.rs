//! Stochastic depth (drop path).

use burn::module::{Flag, Module, Param};
use burn::tensor::{Distribution, Tensor};

/// torchvision's `StochasticDepth(p, mode = "row")` / timm's `DropPath`: in training, each
/// sample's residual branch is dropped with probability `prob` and the kept ones are scaled by
/// `1 / (1 - prob)`; in eval (or frozen) it is the identity.
#[derive(Module, Debug)]
pub struct DropPath {
    /// Probability of dropping a sample's branch.
    pub prob: f64,
    /// Off when frozen.
    pub training: Param<Flag>,
}

impl DropPath {
    /// A drop path with probability `prob`.
    ///
    /// # Panics
    /// If `prob` is outside [0, 1).
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "drop path probability {prob} outside [0, 1)"
        );
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    /// # Shapes
    /// - input and output `[batch, ...]`
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        if self.prob == 0.0 || !self.training.is_enabled() || !input.device().is_autodiff() {
            return input;
        }
        let keep = 1.0 - self.prob;
        let mut shape = [1usize; D];
        shape[0] = input.dims()[0];
        let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &input.device());
        let mask = kindling_precision::like(mask.div_scalar(keep), &input);
        input * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn drop_path_is_identity_in_eval() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([4, 2, 3, 3], &device);
        let y = DropPath::new(0.5).forward(x.clone());
        assert_eq!(y.to_data(), x.to_data());
    }

    #[test]
    fn drop_path_drops_whole_samples_in_training() {
        let device = Device::flex().autodiff();
        let y = DropPath::new(0.5).forward(Tensor::<4>::ones([64, 2, 3, 3], &device));
        let per_sample: Vec<f32> = y
            .sum_dim(3)
            .sum_dim(2)
            .sum_dim(1)
            .to_data()
            .try_to_vec()
            .unwrap();
        // A sample is either dropped (0) or kept and scaled by 2 (2 × 18 ones).
        assert!(
            per_sample.iter().all(|&s| s == 0.0 || s == 36.0),
            "{per_sample:?}"
        );
        assert!(per_sample.contains(&0.0) && per_sample.contains(&36.0));
    }
}
