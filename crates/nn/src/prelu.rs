//! PyTorch's `PReLU`.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use kindling_precision::like;

/// `max(0, x) + a_c · min(0, x)` with one learned slope per channel (dimension 1), or one for
/// all; the field is PyTorch's `weight`, so `prelu1.weight` loads by name.
#[derive(Module, Debug)]
pub struct Prelu {
    /// Slopes, `[num_parameters]` (1 or the channel count).
    pub weight: Param<Tensor<1>>,
}

impl Prelu {
    /// `num_parameters` slopes initialised to `init` (PyTorch: 0.25).
    pub fn new(num_parameters: usize, init: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::full([num_parameters], init, device)),
        }
    }

    /// # Shapes
    /// - input and output `[batch, channels, ...]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mut shape = [1usize; D];
        shape[1.min(D - 1)] = self.weight.dims()[0];
        // PyTorch's autocast runs PReLU in the low dtype: the slopes follow the input.
        let a = like(self.weight.val(), &x).reshape(shape);
        relu(x.clone()) - a * relu(x.neg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn slopes_apply_per_channel() {
        let device = Device::flex();
        let mut p = Prelu::new(2, 0.25, &device);
        p.weight = Param::from_tensor(Tensor::from_floats([0.5, 0.1], &device));
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![-2.0f32, 3.0, -2.0, 3.0], [1, 2, 1, 2]),
            &device,
        );
        let y: Vec<f32> = p.forward(x).into_data().try_to_vec().unwrap();
        assert_eq!(y, [-1.0, 3.0, -0.2, 3.0]);
    }
}
