"""Buckets the samples of a `perf record --call-graph dwarf` profile of `cargo xtask bench step`
into the parts of a training step (the table in benches/step/PROFILE.md).

Usage:
    perf record -e cpu-clock -F 400 --call-graph dwarf,32768 -o step.data \
        target/debug/xtask bench step --models classify --no-reference --repeats 30
    perf script -i step.data | python3 benches/step/perf_buckets.py

A sample goes to the first rule that matches: an allocator or page-fault leaf frame is
"allocation"; otherwise the innermost frame that names an operation decides; samples inside the
autodiff graph walk with no operation below are "autodiff bookkeeping". Warm-up and model
construction are in the profile too (a few % at 30 repeats).
"""
import re
import sys
from collections import Counter

ALLOC_LEAF = re.compile(r"(^|[^a-z])(malloc|_int_malloc|_int_free|cfree|free|realloc|calloc|"
                        r"mmap|munmap|exc_page_fault|clear_page|do_anonymous_page|"
                        r"__memset|alloc::raw_vec|mi_)")
# (bucket, pattern) from the most specific; matched against frames from the leaf outwards.
OPS = [
    ("conv dW", r"conv2d_weight_backward|fused::conv::weight_grad_kernel"),
    ("conv dX", r"conv2d_x_backward|fused::conv::input_grad_kernel"),
    ("conv forward", r"ModuleOps<.*>>::conv2d\b|ModuleOps<.*>>::conv_transpose2d\b|"
                     r"conv2d_bias_backward|fused::conv::forward_kernel|kindling_nn::conv"),
    ("BatchNorm", r"batch_norm|fused::batch_norm"),
    ("activations/pooling", r"relu|max_pool|avg_pool|hard_swish|hard_sigmoid|gelu|sigmoid"),
    ("linear/matmul", r"float_matmul|kindling_nn::linear"),
    ("loss", r"kindling_losses"),
    ("optimizer", r"burn_optim"),
]
OPS = [(b, re.compile(p)) for b, p in OPS]
AUTODIFF = re.compile(r"burn_autodiff")


def samples(stream):
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line.startswith("\t") or line.startswith(" "):
            parts = line.split(None, 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\+0x[0-9a-f]+.*$", "", parts[1]))
    if frames:
        yield frames


def bucket(frames):
    if frames and ALLOC_LEAF.search(frames[0]):
        return "allocation"
    for frame in frames:
        for name, pattern in OPS:
            if pattern.search(frame):
                return name
    if any(AUTODIFF.search(f) for f in frames):
        return "autodiff bookkeeping"
    return "other"


def main():
    counts = Counter(bucket(f) for f in samples(sys.stdin))
    total = sum(counts.values()) or 1
    order = [b for b, _ in OPS] + ["allocation", "autodiff bookkeeping", "other"]
    print(f"{'bucket':<22} {'share':>7}")
    for name in order:
        print(f"{name:<22} {100.0 * counts[name] / total:>6.1f}%")
    print(f"{'samples':<22} {total:>7}")


if __name__ == "__main__":
    main()
