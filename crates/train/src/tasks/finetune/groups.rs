//! The fine-tuning learning-rate groups: the classifier at `lr_head`, the rest at
//! `lr_backbone`, or one group per stage with layer-wise decay (timm's
//! `param_groups_layer_decay`).

use burn::module::Module;
use kindling_finetune::freeze::{ParamInfo, parameters};

use crate::error::Result;
use crate::task::LrGroup;
use crate::tasks::finetune::FinetuneRun;

/// Containers whose numbered children are the stages (torchvision's `features.3`,
/// RegNet's `trunk_output.block2`, ViT's `encoder.layers.encoder_layer_4`).
const STAGE_CONTAINERS: &[&str] = &["features", "trunk_output", "encoder", "layers"];

/// The stage a parameter path belongs to: its top-level module, or the child of a
/// [`STAGE_CONTAINERS`] entry (`layer3`, `features.5`, `encoder.layers.encoder_layer_2`).
fn stage(path: &str) -> String {
    let mut parts = path.split('.');
    let mut key = parts.next().unwrap_or_default().to_string();
    let mut last = key.clone();
    for part in parts {
        if !STAGE_CONTAINERS.contains(&last.as_str()) {
            break;
        }
        key.push('.');
        key.push_str(part);
        last = part.to_string();
    }
    key
}

/// The groups for `cfg` (empty when no group rate is set: everything at the scheduled rate).
pub fn lr_groups<M: Module>(
    cfg: &FinetuneRun,
    classifier: &str,
    model: &M,
) -> Result<Vec<LrGroup>> {
    let c = &cfg.finetune;
    let base = cfg.run.optimizer.lr;
    let head_lr = c.lr_head.unwrap_or(base);
    // Everything at the base rate is no group.
    if c.layer_decay.is_none() && head_lr == base && c.lr_backbone.unwrap_or(head_lr) == base {
        return Ok(Vec::new());
    }
    let params: Vec<ParamInfo> = parameters(model)
        .into_iter()
        .filter(|p| !p.buffer)
        .collect();
    let in_head =
        |p: &ParamInfo| p.path == classifier || p.path.starts_with(&format!("{classifier}."));
    let (head, backbone): (Vec<&ParamInfo>, Vec<&ParamInfo>) =
        params.iter().partition(|p| in_head(p));
    let group = |name: String, ps: &[&ParamInfo], lr: f64| LrGroup {
        name,
        params: ps.iter().map(|p| p.id).collect(),
        factor: lr / base,
    };
    let mut groups = vec![group("head".into(), &head, head_lr)];
    match c.layer_decay {
        None => groups.push(group(
            "backbone".into(),
            &backbone,
            c.lr_backbone.unwrap_or(head_lr),
        )),
        Some(decay) => {
            let mut stages: Vec<(String, Vec<&ParamInfo>)> = Vec::new();
            for p in backbone {
                let s = stage(&p.path);
                match stages.last_mut() {
                    Some((name, ps)) if *name == s => ps.push(p),
                    _ => stages.push((s, vec![p])),
                }
            }
            let n = stages.len();
            for (i, (name, ps)) in stages.iter().enumerate() {
                // The head is stage n; the stage just below it trains at `decay` × its rate.
                let lr = head_lr * decay.powi((n - i) as i32);
                groups.push(group(name.clone(), ps, lr));
            }
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use kindling_finetune::{ModelOptions, create_model};

    #[test]
    fn stages_are_top_level_modules_or_numbered_children() {
        assert_eq!(stage("layer3.1.conv2.weight"), "layer3");
        assert_eq!(stage("conv1.weight"), "conv1");
        assert_eq!(stage("features.5.0.block.1.weight"), "features.5");
        assert_eq!(
            stage("encoder.layers.encoder_layer_2.mlp.0.weight"),
            "encoder.layers.encoder_layer_2"
        );
        assert_eq!(
            stage("trunk_output.block2.0.proj.0.weight"),
            "trunk_output.block2"
        );
    }

    #[test]
    fn head_and_backbone_rates_and_layer_decay_cover_every_parameter() {
        let device = Device::flex().autodiff();
        let model =
            create_model("resnet18", ModelOptions::default().num_classes(3), &device).unwrap();
        let mut cfg = FinetuneRun::default();
        cfg.run.optimizer.lr = 0.1;
        let total = parameters(&model).iter().filter(|p| !p.buffer).count();
        cfg.finetune.lr_backbone = None;
        assert!(lr_groups(&cfg, "fc", &model).unwrap().is_empty());
        cfg.finetune.lr_backbone = Some(0.1);
        assert!(lr_groups(&cfg, "fc", &model).unwrap().is_empty());

        cfg.finetune.lr_backbone = Some(0.01);
        let groups = lr_groups(&cfg, "fc", &model).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].params.len(), 2, "fc.weight and fc.bias");
        assert!((groups[0].factor - 1.0).abs() < 1e-15);
        assert!((groups[1].factor - 0.1).abs() < 1e-15);
        assert_eq!(groups[0].params.len() + groups[1].params.len(), total);

        cfg.finetune.lr_backbone = None;
        cfg.finetune.layer_decay = Some(0.5);
        let groups = lr_groups(&cfg, "fc", &model).unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "head", "conv1", "bn1", "layer1", "layer2", "layer3", "layer4"
            ]
        );
        // layer4 (just below the head) at 0.5×, conv1 at 0.5^6.
        assert!((groups[6].factor - 0.5).abs() < 1e-15);
        assert!((groups[1].factor - 0.5f64.powi(6)).abs() < 1e-15);
        assert_eq!(groups.iter().map(|g| g.params.len()).sum::<usize>(), total);
    }
}
