//! Multi-head self-attention with PyTorch's `nn.MultiheadAttention` parameter layout.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use kindling_precision::{full, low};

use crate::{Linear, LinearConfig};

/// PyTorch's `nn.MultiheadAttention(embed_dim, num_heads, batch_first = True)` used as
/// self-attention (`query = key = value`), as torchvision's ViT does.
///
/// The query, key and value projections are packed like PyTorch's: `in_proj_weight`
/// `[3 × embed_dim, embed_dim]` (PyTorch's `[out, in]` layout, rows q then k then v) and
/// `in_proj_bias` `[3 × embed_dim]`; `out_proj` is a [`Linear`], so a torchvision `state_dict`
/// maps onto it by name.
///
/// ```text
/// q, k, v = split(x Wᵀ + b)                       per head: [batch, tokens, head_dim]
/// out     = out_proj(concat_h softmax(q kᵀ / sqrt(head_dim)) v)
/// ```
#[derive(Module, Debug)]
pub struct MultiheadAttention {
    /// Packed q/k/v projection, `[3 × embed_dim, embed_dim]` (PyTorch layout).
    pub in_proj_weight: Param<Tensor<2>>,
    /// Packed q/k/v bias, `[3 × embed_dim]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// Output projection, `embed_dim → embed_dim`.
    pub out_proj: Linear,
    /// Dropout on the attention weights (PyTorch's `dropout`).
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
}

impl MultiheadAttention {
    /// A layer with PyTorch's initialisation: Xavier-uniform `in_proj_weight`, zero biases,
    /// the default `Linear` weight for `out_proj`; `dropout` on the attention weights.
    ///
    /// # Panics
    /// If `embed_dim` is not a positive multiple of `num_heads` (a bug in the model definition).
    pub fn new(embed_dim: usize, num_heads: usize, dropout: f64, device: &Device) -> Self {
        assert!(
            num_heads > 0 && embed_dim > 0 && embed_dim.is_multiple_of(num_heads),
            "embed_dim {embed_dim} is not a multiple of num_heads {num_heads}"
        );
        let in_proj_weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [3 * embed_dim, embed_dim],
            Some(embed_dim),
            Some(3 * embed_dim),
            device,
        );
        let mut out_proj = LinearConfig::new(embed_dim, embed_dim).init(device);
        out_proj.bias = Some(Param::from_tensor(Tensor::zeros([embed_dim], device)));
        Self {
            in_proj_weight,
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * embed_dim], device)),
            out_proj,
            dropout: DropoutConfig::new(dropout).init(),
            num_heads,
        }
    }

    /// Self-attention over the tokens of each sample (no mask).
    ///
    /// # Shapes
    /// - input and output `[batch, tokens, embed_dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let h = self.num_heads;
        let hd = d / h;
        // PyTorch layout [3d, d]: `linear` wants Burn's [in, out].
        // Under autocast: projections and products in the low dtype, softmax in f32.
        let qkv = burn::tensor::module::linear(
            low(x),
            low(self.in_proj_weight.val()).transpose(),
            Some(low(self.in_proj_bias.val())),
        );
        // [b, n, 3, h, hd] → [3, b, h, n, hd].
        let qkv = qkv.reshape([b, n, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let part = |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([b, h, n, hd]) };
        // PyTorch scales the query before the product.
        let q = part(0).mul_scalar(1.0 / (hd as f64).sqrt());
        let (k, v) = (part(1), part(2));
        let attn = self
            .dropout
            .forward(softmax(full(q.matmul(k.transpose())), 3));
        let out = low(attn).matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        // The packed input projection (3d outputs per token) and the two attention products.
        crate::flops::add_macs((b * n * 3 * d * d + 2 * b * n * n * d) as u64);
        self.out_proj.forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn attention_matches_pytorch_multihead_attention() {
        // torch 2.9, float64: m = nn.MultiheadAttention(4, 2, batch_first=True);
        // in_proj_weight = sin(arange(48).view(12, 4) * 0.7) * 0.5,
        // in_proj_bias = cos(arange(12)) * 0.1, out_proj.weight = sin(arange(16).view(4, 4) * 1.3)
        // * 0.5, out_proj.bias = arange(4) * 0.05, x = sin(arange(12).view(1, 3, 4) * 0.9 + 0.3);
        // m(x, x, x)[0].
        let device = Device::flex();
        let seq = |n: usize, f: &dyn Fn(f32) -> f32| (0..n).map(|i| f(i as f32)).collect();
        let t2 =
            |v: Vec<f32>, s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, s), &device);
        let mut m = MultiheadAttention::new(4, 2, 0.0, &device);
        m.in_proj_weight = Param::from_tensor(t2(seq(48, &|i| (i * 0.7).sin() * 0.5), [12, 4]));
        m.in_proj_bias = Param::from_tensor(Tensor::from_data(
            TensorData::new(seq(12, &|i| i.cos() * 0.1), [12]),
            &device,
        ));
        m.out_proj.weight =
            Param::from_tensor(t2(seq(16, &|i| (i * 1.3).sin() * 0.5), [4, 4]).transpose());
        m.out_proj.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(seq(4, &|i| i * 0.05), [4]),
            &device,
        )));
        let x = Tensor::<3>::from_data(
            TensorData::new(seq(12, &|i| (i * 0.9 + 0.3).sin()), [1, 3, 4]),
            &device,
        );
        let y: Vec<f32> = m.forward(x).into_data().try_to_vec().unwrap();
        let want = [
            -0.1530719f32,
            -0.1533984,
            0.0624809,
            0.3182418,
            0.0499845,
            0.2057497,
            0.1959581,
            0.0841662,
            0.0041365,
            0.0535546,
            0.0991942,
            0.1456905,
        ];
        for (got, want) in y.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{y:?}");
        }
    }
}
