//! The autodiff plumbing the convolution-shaped kernels share (convolution, depthwise and
//! transposed convolution): an op of an input and a weight with static options, both inputs
//! checkpointed for the backward.
//!
//! The kernels compute in f32 or f64. On f16 and bf16 tensors (autocast's convolutions) [`run`]
//! and [`backward`] widen the inputs to f32 for the kernel and round its results back, as
//! PyTorch's CPU kernels do for reduced precision: the op keeps its low-precision inputs for the
//! backward (half the memory of f32 activations) and returns its dtype.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};

use burn::tensor::FloatDType;

use super::real::{cast, contiguous, low_precision};

/// Runs `kernel` on `x` and `weight` in their dtype (f32 or f64), or on f16/bf16 ones widened to
/// f32 with the result rounded back to their dtype.
pub fn run<O>(
    x: FlexTensor,
    weight: FlexTensor,
    options: &O,
    kernel: fn(FlexTensor, FlexTensor, &O) -> FlexTensor,
) -> FlexTensor {
    match low_precision(&x) {
        Some(dtype) => cast(
            kernel(
                cast(x, FloatDType::F32),
                cast(weight, FloatDType::F32),
                options,
            ),
            dtype,
        ),
        None => kernel(x, weight, options),
    }
}

/// The state every such backward keeps: the two checkpointed inputs and the options.
pub type State<O> = (NodeId, NodeId, O);

/// Runs `forward` on autodiff tensors, recording `backward` when either input is tracked.
pub fn forward<C, B, O>(
    backward: B,
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    options: O,
    forward: fn(FlexTensor, FlexTensor, &O) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>>
where
    C: CheckpointStrategy,
    B: Backward<Flex, 2, State = State<O>>,
    O: Clone + Send + std::fmt::Debug + 'static,
{
    match backward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let y = run(
                x.into_primitive(),
                weight.into_primitive(),
                &options,
                forward,
            );
            prep.finish((x_state, weight_state, options), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(
            x.into_primitive(),
            weight.into_primitive(),
            &options,
            forward,
        )),
    }
}

/// The backward: retrieves `dy`, the input and the weight (contiguous; widened to f32 when they
/// are f16/bf16) and registers what `gradients(dy, x, weight, options, [x needed, weight
/// needed])` returns for each parent (rounded back to the op's dtype).
pub fn backward<O>(
    ops: Ops<State<O>, 2>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
    gradients: impl FnOnce(
        &FlexTensor,
        &FlexTensor,
        &FlexTensor,
        &O,
        [bool; 2],
    ) -> [Option<FlexTensor>; 2],
) where
    O: Clone + Send + std::fmt::Debug + 'static,
{
    let [node_x, node_weight] = ops.parents;
    let dy = contiguous(grads.consume::<Flex>(&ops.node));
    let (x_state, weight_state, options) = ops.state;
    let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
    let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
    let needed = [node_x.is_some(), node_weight.is_some()];
    let low = low_precision(&x);
    let (dy, x, weight) = match low {
        Some(_) => (
            cast(dy, FloatDType::F32),
            cast(x, FloatDType::F32),
            cast(weight, FloatDType::F32),
        ),
        None => (dy, x, weight),
    };
    let [dx, dw] = gradients(&dy, &x, &weight, &options, needed);
    for (node, grad) in [(node_x, dx), (node_weight, dw)] {
        if let (Some(node), Some(grad)) = (node, grad) {
            let grad = match low {
                Some(dtype) => cast(grad, dtype),
                None => grad,
            };
            grads.register::<Flex>(node.id, grad);
        }
    }
}
