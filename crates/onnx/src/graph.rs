//! Reading an ONNX graph before import: its signature, the operators the importer lacks, and
//! the logits edit (a trailing Softmax removed).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use onnx_ir::{Message, ModelProto, NodeType, ValueInfoProto};

use crate::{OnnxError, UnsupportedOp};

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The ONNX value name.
    pub name: String,
    /// Element type (`float32`, `int64`, …).
    pub dtype: String,
    /// Each dimension: its size, or its symbolic name (`batch`, `?`) when dynamic.
    pub dims: Vec<String>,
}

impl std::fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` {} [{}]",
            self.name,
            self.dtype,
            self.dims.join(", ")
        )
    }
}

/// What a model takes and gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Graph inputs (initializers left out).
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
    /// Opset of the default domain.
    pub opset: i64,
    /// Number of nodes.
    pub nodes: usize,
}

/// Reads `path` as an ONNX model.
pub(crate) fn read(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| OnnxError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if model.graph.node.is_empty() {
        return Err(OnnxError::Corrupt {
            path: path.to_path_buf(),
            message: "the graph has no nodes".into(),
        });
    }
    Ok(model)
}

/// The signature of the model in `path`.
pub fn inspect(path: &Path) -> Result<Signature, OnnxError> {
    Ok(signature(&read(path)?))
}

pub(crate) fn signature(model: &ModelProto) -> Signature {
    let g = &model.graph;
    let initialized: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let info = |v: &ValueInfoProto| {
        let t = v.type_.tensor_type();
        TensorInfo {
            name: v.name.clone(),
            dtype: elem_type_name(t.elem_type),
            dims: t
                .shape
                .dim
                .iter()
                .map(|d| match (d.has_dim_value(), d.dim_param()) {
                    (true, _) if d.dim_value() >= 0 => d.dim_value().to_string(),
                    (_, "") => "?".to_string(),
                    (_, p) => p.to_string(),
                })
                .collect(),
        }
    };
    Signature {
        inputs: g
            .input
            .iter()
            .filter(|v| !initialized.contains(&v.name.as_str()))
            .map(info)
            .collect(),
        outputs: g.output.iter().map(info).collect(),
        opset: model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version),
        nodes: g.node.len(),
    }
}

/// ONNX's `TensorProto.DataType` names.
fn elem_type_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "undefined",
        "float32",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "string",
        "bool",
        "float16",
        "float64",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
        "bfloat16",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("type {code}"), |s| s.to_string())
}

/// The operators no importer path handles: a non-default domain, or an `op_type` onnx-ir does
/// not know. Each is listed once with its first node and its count.
pub(crate) fn unsupported_ops(model: &ModelProto) -> Vec<UnsupportedOp> {
    let mut found: BTreeMap<String, UnsupportedOp> = BTreeMap::new();
    for (i, node) in model.graph.node.iter().enumerate() {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if default_domain && NodeType::from_str(&node.op_type).is_ok() {
            continue;
        }
        let op = if default_domain {
            node.op_type.clone()
        } else {
            format!("{}::{}", node.domain, node.op_type)
        };
        found
            .entry(op.clone())
            .or_insert_with(|| UnsupportedOp {
                op,
                node: if node.name.is_empty() {
                    format!("#{i}")
                } else {
                    node.name.clone()
                },
                count: 0,
            })
            .count += 1;
    }
    found.into_values().collect()
}

/// Removes a Softmax (or LogSoftmax) that produces the graph's only output, through any
/// `Identity` nodes after it, so the graph returns the logits a loss needs. Returns the removed
/// node's name, or `None` when the graph does not end in one.
pub(crate) fn strip_trailing_softmax(model: &mut ModelProto) -> Option<String> {
    let g = model.graph.mut_or_insert_default();
    if g.output.len() != 1 {
        return None;
    }
    let producer = |nodes: &[onnx_ir::NodeProto], value: &str| {
        nodes
            .iter()
            .position(|n| n.output.iter().any(|o| o == value))
    };
    let consumers = |nodes: &[onnx_ir::NodeProto], value: &str| {
        nodes
            .iter()
            .filter(|n| n.input.iter().any(|i| i == value))
            .count()
    };
    let mut value = g.output[0].name.clone();
    let mut removed = Vec::new();
    loop {
        let i = producer(&g.node, &value)?;
        let node = &g.node[i];
        match node.op_type.as_str() {
            "Identity" => {
                removed.push(i);
                value = node.input.first()?.clone();
            }
            "Softmax" | "LogSoftmax" => {
                let input = node.input.first()?.clone();
                // The logits must feed nothing else, or removing the node changes other outputs.
                if consumers(&g.node, &input) != 1 {
                    return None;
                }
                let name = node.name.clone();
                removed.push(i);
                removed.sort_unstable();
                for i in removed.into_iter().rev() {
                    g.node.remove(i);
                }
                g.output[0].name = input;
                return Some(if name.is_empty() {
                    "Softmax".into()
                } else {
                    name
                });
            }
            _ => return None,
        }
    }
}
