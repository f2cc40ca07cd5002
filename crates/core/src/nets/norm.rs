//! Group normalisation (Wu & He 2018) with a faster path for the `[B, C]` inputs of MLP blocks.
//!
//! For a `[B, C]` input, normalising C/G channels per group is a layer norm over the rows of the
//! `[B·G, C/G]` view, followed by the per-channel affine map. libtorch's layer-norm kernels are
//! faster than its group-norm backward on such inputs (no spatial extent), so 2-D inputs
//! take that route; inputs with spatial dimensions keep `group_norm`, which is faster there.
//! The variables (`weight`, `bias`) are those of `tch::nn::group_norm`, so checkpoints carry over.

use tch::nn::{self, Module};
use tch::Tensor;

#[derive(Debug)]
pub struct GroupNorm {
    groups: i64,
    eps: f64,
    weight: Tensor,
    bias: Tensor,
}

/// A group norm of `channels` channels in `groups` groups (which must divide `channels`),
/// with a learned affine map starting at the identity.
pub fn group_norm(p: nn::Path, groups: i64, channels: i64) -> GroupNorm {
    GroupNorm {
        groups,
        eps: 1e-5,
        weight: p.var("weight", &[channels], nn::Init::Const(1.0)),
        bias: p.var("bias", &[channels], nn::Init::Const(0.0)),
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        if size.len() != 2 {
            return x.group_norm(self.groups, Some(&self.weight), Some(&self.bias), self.eps, false);
        }
        let (b, c) = (size[0], size[1]);
        let normed = x.reshape([b * self.groups, c / self.groups]).layer_norm(
            [c / self.groups],
            None::<Tensor>,
            None::<Tensor>,
            self.eps,
            false,
        );
        self.bias.addcmul(&normed.reshape([b, c]), &self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Both routes give libtorch's group_norm, forward and gradients.
    #[test]
    fn agrees_with_libtorch_group_norm() {
        for shape in [vec![6i64, 12], vec![4, 12, 3, 5]] {
            let vs = nn::VarStore::new(Device::Cpu);
            let ours = group_norm(vs.root() / "gn", 4, 12);
            let theirs = nn::group_norm(vs.root() / "ref", 4, 12, Default::default());
            tch::no_grad(|| {
                let (mut w, mut b) = (ours.weight.shallow_clone(), ours.bias.shallow_clone());
                w.copy_(&(Tensor::arange(12, (Kind::Float, Device::Cpu)) * 0.1 + 0.5));
                b.copy_(&(Tensor::arange(12, (Kind::Float, Device::Cpu)) * -0.2));
                let vars = vs.variables();
                vars["ref.weight"].shallow_clone().copy_(&w);
                vars["ref.bias"].shallow_clone().copy_(&b);
            });
            let n: i64 = shape.iter().product();
            let x = ((Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.7).sin() * 3.0)
                .reshape(&shape[..])
                .set_requires_grad(true);
            let probe = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.3).cos().reshape(&shape[..]);
            let (a, r) = (ours.forward(&x), theirs.forward(&x));
            assert!((&a - &r).abs().max().double_value(&[]) < 1e-5, "{shape:?}: forward differs");
            let inputs = [&x, &ours.weight, &ours.bias];
            let ga = Tensor::run_backward(&[(&a * &probe).sum(Kind::Float)], &inputs, false, false);
            let inputs = [&x, theirs.ws.as_ref().unwrap(), theirs.bs.as_ref().unwrap()];
            let gr = Tensor::run_backward(&[(&r * &probe).sum(Kind::Float)], &inputs, false, false);
            for (i, (ga, gr)) in ga.iter().zip(&gr).enumerate() {
                let diff = (ga - gr).abs().max().double_value(&[]);
                assert!(diff < 1e-4, "{shape:?}: gradient {i} differs by {diff}");
            }
        }
    }
}
