//! Convolutional image networks: a plain conv stack for 28×28 / 32×32 images (as in the
//! PolyMNIST and MNIST-SVHN architectures of MoPoE and MLD) and a ResNet-style stack for 64×64.

use tch::nn::{self, ConvConfig, Module};
use tch::Tensor;

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    nn::conv2d(p, i, o, k, ConvConfig { stride, padding, ..Default::default() })
}

/// A transposed convolution whose bias is added after it rather than inside it: oneDNN computes
/// the bias of a channels-last transposed convolution (forward and backward) with a slow reference
/// kernel, a broadcast addition does it at memory speed.
/// The variables (`bias` then `weight`, the bias zero) are libtorch's own, in its order.
#[derive(Debug)]
struct Deconv {
    conv: nn::ConvTranspose2D,
    bias: Tensor,
}

impl Module for Deconv {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.conv.forward(x) + self.bias.view([1, -1, 1, 1])
    }
}

fn deconv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> Deconv {
    let bias = p.var("bias", &[o], nn::Init::Const(0.));
    let config = nn::ConvTransposeConfig { stride, padding, bias: false, ..Default::default() };
    Deconv { conv: nn::conv_transpose2d(p, i, o, k, config), bias }
}

/// On CPU, the same `[N, C, H, W]` tensor laid out channels-last in memory (NHWC strides):
/// libtorch's oneDNN convolutions keep that layout from layer to layer and run the forward
/// passes of these stacks faster on it (measured in docs/src/results/benchmarks.md). Every
/// operation reads the tensor by index, so values are unchanged. Other devices get the tensor as it is.
pub fn channels_last(x: &Tensor) -> Tensor {
    if x.device() == tch::Device::Cpu {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// `side` (28 or 32) → 14|16 → 7|8 → 4, then a linear layer from `4w·4·4` to `out_dim`.
pub fn conv_encoder(p: nn::Path, channels: i64, side: i64, out_dim: i64, w: i64) -> nn::Sequential {
    let last_kernel = if side == 28 { 3 } else { 4 };
    nn::seq()
        .add_fn(channels_last)
        .add(conv(&p / "c0", channels, w, 4, 2, 1))
        .add_fn(|x| x.silu())
        .add(conv(&p / "c1", w, 2 * w, 4, 2, 1))
        .add_fn(|x| x.silu())
        .add(conv(&p / "c2", 2 * w, 4 * w, last_kernel, 2, 1))
        .add_fn(|x| x.silu())
        .add_fn(|x| x.flatten(1, -1))
        .add(nn::linear(&p / "out", 4 * w * 16, out_dim, Default::default()))
}

/// Mirror of [`conv_encoder`]: `in_dim` → `4w×4×4` → 7|8 → 14|16 → 28|32.
pub fn conv_decoder(p: nn::Path, in_dim: i64, channels: i64, side: i64, w: i64) -> nn::Sequential {
    let first_kernel = if side == 28 { 3 } else { 4 };
    nn::seq()
        .add(nn::linear(&p / "in", in_dim, 4 * w * 16, Default::default()))
        .add_fn(move |x| channels_last(&x.silu().view([-1, 4 * w, 4, 4])))
        .add(deconv(&p / "d0", 4 * w, 2 * w, first_kernel, 2, 1))
        .add_fn(|x| x.silu())
        .add(deconv(&p / "d1", 2 * w, w, 4, 2, 1))
        .add_fn(|x| x.silu())
        .add(deconv(&p / "d2", w, channels, 4, 2, 1))
}

/// Residual block: x + conv(silu(gn(conv(silu(gn(x)))))), with a 1×1 projection when the
/// channel count changes.
#[derive(Debug)]
struct ResBlock {
    norm0: nn::GroupNorm,
    conv0: nn::Conv2D,
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    skip: Option<nn::Conv2D>,
}

impl ResBlock {
    fn new(p: nn::Path, i: i64, o: i64) -> Self {
        let groups = |c: i64| if c % 8 == 0 { 8 } else { 1 };
        Self {
            norm0: nn::group_norm(&p / "n0", groups(i), i, Default::default()),
            conv0: conv(&p / "c0", i, o, 3, 1, 1),
            norm1: nn::group_norm(&p / "n1", groups(o), o, Default::default()),
            conv1: conv(&p / "c1", o, o, 3, 1, 1),
            skip: (i != o).then(|| conv(&p / "skip", i, o, 1, 1, 0)),
        }
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv0.forward(&self.norm0.forward(x).silu());
        let h = self.conv1.forward(&self.norm1.forward(&h).silu());
        match &self.skip {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }
}

/// 64 → 32 → 16 → 8 → 4 with a residual block at each scale, then linear to `out_dim`.
pub fn resnet_encoder(p: nn::Path, channels: i64, out_dim: i64, w: i64) -> nn::Sequential {
    let widths = [w, 2 * w, 4 * w, 8 * w];
    let mut seq = nn::seq().add(conv(&p / "stem", channels, w, 3, 1, 1));
    let mut c = w;
    for (i, &o) in widths.iter().enumerate() {
        seq = seq.add(ResBlock::new(&p / format!("r{i}"), c, o)).add(conv(&p / format!("down{i}"), o, o, 4, 2, 1));
        c = o;
    }
    seq.add_fn(|x| x.silu().flatten(1, -1)).add(nn::linear(&p / "out", 8 * w * 16, out_dim, Default::default()))
}

/// Mirror of [`resnet_encoder`] with nearest-neighbour up-sampling.
pub fn resnet_decoder(p: nn::Path, in_dim: i64, channels: i64, w: i64) -> nn::Sequential {
    let widths = [8 * w, 4 * w, 2 * w, w];
    let mut seq = nn::seq()
        .add(nn::linear(&p / "in", in_dim, 8 * w * 16, Default::default()))
        .add_fn(move |x| x.view([-1, 8 * w, 4, 4]));
    let mut c = 8 * w;
    for (i, &o) in widths.iter().enumerate() {
        seq = seq.add_fn(|x| x.upsample_nearest2d([x.size()[2] * 2, x.size()[3] * 2], None, None)).add(ResBlock::new(
            &p / format!("r{i}"),
            c,
            o,
        ));
        c = o;
    }
    seq.add_fn(|x| x.silu()).add(conv(&p / "head", w, channels, 3, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_last_keeps_values_and_changes_only_the_strides() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let y = channels_last(&x);
        assert_eq!(y.size(), x.size());
        assert_eq!(y.stride(), vec![60, 1, 15, 3]);
        assert_eq!(f64::try_from((&y - &x).abs().max()).unwrap(), 0.0);
    }
}
