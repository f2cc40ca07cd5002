//! Inception-v3 exactly as pytorch-fid builds it for FID (`pytorch_fid.inception.InceptionV3`
//! with `use_fid_inception=True`, output block 3): torchvision's Inception-v3 trunk with the
//! TensorFlow-compatible patched blocks (FIDInceptionA/C: average pooling that ignores padded
//! zeros; FIDInceptionE_1 likewise; FIDInceptionE_2: max pooling in its pool branch), cut after
//! `Mixed_7c` and a global average pool: 2048-d features.
//!
//! Inputs are images in `[0, 1]`; grey images are repeated to three channels (as
//! `PIL.Image.convert('RGB')` does), resized to 299×299 bilinearly (`align_corners=False`) and
//! scaled to `[-1, 1]`.
//!
//! Weights come from the user's `pt_inception-2015-12-05-6726825d.pth` (a `torch.save` state
//! dict with keys such as `Mixed_5b.branch1x1.conv.weight`), converted once to safetensors by
//! `scripts/convert_inception.py` (libtorch cannot read Python's pickled state dicts; other
//! files are still tried with `Tensor::loadz_multi`, and a failure names the conversion command).

use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::nn::{self, ConvConfigND, Module, ModuleT};
use tch::{Device, Kind, Tensor};

/// Side of the images the network reads.
pub const INPUT_SIZE: i64 = 299;
/// Size of the pool features.
pub const FEATURE_DIM: i64 = 2048;

/// `BasicConv2d`: convolution without bias, batch norm (ε = 0.001), ReLU.
#[derive(Debug)]
struct BasicConv {
    conv: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl BasicConv {
    fn new(p: nn::Path, i: i64, o: i64, k: [i64; 2], stride: i64, padding: [i64; 2]) -> Self {
        let config = ConvConfigND { stride: [stride, stride], padding, bias: false, ..Default::default() };
        Self {
            conv: nn::conv(&p / "conv", i, o, k, config),
            bn: nn::batch_norm2d(&p / "bn", o, nn::BatchNormConfig { eps: 1e-3, ..Default::default() }),
        }
    }

    /// A square kernel `k` with padding `pad` on both sides.
    fn square(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, pad: i64) -> Self {
        Self::new(p, i, o, [k, k], stride, [pad, pad])
    }
}

impl Module for BasicConv {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), false).relu()
    }
}

/// 3×3 average pooling, stride 1, padding 1, not counting the padded zeros (TensorFlow's).
fn avg_pool_tf(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
}

fn max_pool_3x3(x: &Tensor, stride: i64, padding: i64) -> Tensor {
    x.max_pool2d([3, 3], [stride, stride], [padding, padding], [1, 1], false)
}

/// FIDInceptionA (`Mixed_5b/c/d`).
#[derive(Debug)]
struct BlockA {
    b1: BasicConv,
    b5_1: BasicConv,
    b5_2: BasicConv,
    b3_1: BasicConv,
    b3_2: BasicConv,
    b3_3: BasicConv,
    pool: BasicConv,
}

impl BlockA {
    fn new(p: nn::Path, i: i64, pool_features: i64) -> Self {
        Self {
            b1: BasicConv::square(&p / "branch1x1", i, 64, 1, 1, 0),
            b5_1: BasicConv::square(&p / "branch5x5_1", i, 48, 1, 1, 0),
            b5_2: BasicConv::square(&p / "branch5x5_2", 48, 64, 5, 1, 2),
            b3_1: BasicConv::square(&p / "branch3x3dbl_1", i, 64, 1, 1, 0),
            b3_2: BasicConv::square(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            b3_3: BasicConv::square(&p / "branch3x3dbl_3", 96, 96, 3, 1, 1),
            pool: BasicConv::square(&p / "branch_pool", i, pool_features, 1, 1, 0),
        }
    }
}

impl Module for BlockA {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::cat(
            &[
                self.b1.forward(x),
                self.b5_2.forward(&self.b5_1.forward(x)),
                self.b3_3.forward(&self.b3_2.forward(&self.b3_1.forward(x))),
                self.pool.forward(&avg_pool_tf(x)),
            ],
            1,
        )
    }
}

/// InceptionB (`Mixed_6a`, unpatched): grid reduction 35 → 17.
#[derive(Debug)]
struct BlockB {
    b3: BasicConv,
    d1: BasicConv,
    d2: BasicConv,
    d3: BasicConv,
}

impl BlockB {
    fn new(p: nn::Path, i: i64) -> Self {
        Self {
            b3: BasicConv::square(&p / "branch3x3", i, 384, 3, 2, 0),
            d1: BasicConv::square(&p / "branch3x3dbl_1", i, 64, 1, 1, 0),
            d2: BasicConv::square(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            d3: BasicConv::square(&p / "branch3x3dbl_3", 96, 96, 3, 2, 0),
        }
    }
}

impl Module for BlockB {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::cat(
            &[self.b3.forward(x), self.d3.forward(&self.d2.forward(&self.d1.forward(x))), max_pool_3x3(x, 2, 0)],
            1,
        )
    }
}

/// FIDInceptionC (`Mixed_6b/c/d/e`): factorised 7×7 convolutions.
#[derive(Debug)]
struct BlockC {
    b1: BasicConv,
    b7: [BasicConv; 3],
    d7: [BasicConv; 5],
    pool: BasicConv,
}

impl BlockC {
    fn new(p: nn::Path, i: i64, c7: i64) -> Self {
        let row = |name: &str, i, o| BasicConv::new(&p / name, i, o, [1, 7], 1, [0, 3]);
        let col = |name: &str, i, o| BasicConv::new(&p / name, i, o, [7, 1], 1, [3, 0]);
        Self {
            b1: BasicConv::square(&p / "branch1x1", i, 192, 1, 1, 0),
            b7: [
                BasicConv::square(&p / "branch7x7_1", i, c7, 1, 1, 0),
                row("branch7x7_2", c7, c7),
                col("branch7x7_3", c7, 192),
            ],
            d7: [
                BasicConv::square(&p / "branch7x7dbl_1", i, c7, 1, 1, 0),
                col("branch7x7dbl_2", c7, c7),
                row("branch7x7dbl_3", c7, c7),
                col("branch7x7dbl_4", c7, c7),
                row("branch7x7dbl_5", c7, 192),
            ],
            pool: BasicConv::square(&p / "branch_pool", i, 192, 1, 1, 0),
        }
    }
}

fn chain(convs: &[BasicConv], x: &Tensor) -> Tensor {
    convs.iter().fold(x.shallow_clone(), |h, c| c.forward(&h))
}

impl Module for BlockC {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::cat(
            &[self.b1.forward(x), chain(&self.b7, x), chain(&self.d7, x), self.pool.forward(&avg_pool_tf(x))],
            1,
        )
    }
}

/// InceptionD (`Mixed_7a`, unpatched): grid reduction 17 → 8.
#[derive(Debug)]
struct BlockD {
    b3: [BasicConv; 2],
    b7: [BasicConv; 4],
}

impl BlockD {
    fn new(p: nn::Path, i: i64) -> Self {
        Self {
            b3: [
                BasicConv::square(&p / "branch3x3_1", i, 192, 1, 1, 0),
                BasicConv::square(&p / "branch3x3_2", 192, 320, 3, 2, 0),
            ],
            b7: [
                BasicConv::square(&p / "branch7x7x3_1", i, 192, 1, 1, 0),
                BasicConv::new(&p / "branch7x7x3_2", 192, 192, [1, 7], 1, [0, 3]),
                BasicConv::new(&p / "branch7x7x3_3", 192, 192, [7, 1], 1, [3, 0]),
                BasicConv::square(&p / "branch7x7x3_4", 192, 192, 3, 2, 0),
            ],
        }
    }
}

impl Module for BlockD {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::cat(&[chain(&self.b3, x), chain(&self.b7, x), max_pool_3x3(x, 2, 0)], 1)
    }
}

/// FIDInceptionE_1 (`Mixed_7b`, average pool without padded zeros) and FIDInceptionE_2
/// (`Mixed_7c`, max pool) — the only difference is the pool branch.
#[derive(Debug)]
struct BlockE {
    b1: BasicConv,
    b3_1: BasicConv,
    b3_2a: BasicConv,
    b3_2b: BasicConv,
    d1: BasicConv,
    d2: BasicConv,
    d3a: BasicConv,
    d3b: BasicConv,
    pool: BasicConv,
    max_pool: bool,
}

impl BlockE {
    fn new(p: nn::Path, i: i64, max_pool: bool) -> Self {
        let row = |name: &str, i, o| BasicConv::new(&p / name, i, o, [1, 3], 1, [0, 1]);
        let col = |name: &str, i, o| BasicConv::new(&p / name, i, o, [3, 1], 1, [1, 0]);
        Self {
            b1: BasicConv::square(&p / "branch1x1", i, 320, 1, 1, 0),
            b3_1: BasicConv::square(&p / "branch3x3_1", i, 384, 1, 1, 0),
            b3_2a: row("branch3x3_2a", 384, 384),
            b3_2b: col("branch3x3_2b", 384, 384),
            d1: BasicConv::square(&p / "branch3x3dbl_1", i, 448, 1, 1, 0),
            d2: BasicConv::square(&p / "branch3x3dbl_2", 448, 384, 3, 1, 1),
            d3a: row("branch3x3dbl_3a", 384, 384),
            d3b: col("branch3x3dbl_3b", 384, 384),
            pool: BasicConv::square(&p / "branch_pool", i, 192, 1, 1, 0),
            max_pool,
        }
    }
}

impl Module for BlockE {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h3 = self.b3_1.forward(x);
        let d = self.d2.forward(&self.d1.forward(x));
        let pooled = if self.max_pool { max_pool_3x3(x, 1, 1) } else { avg_pool_tf(x) };
        Tensor::cat(
            &[
                self.b1.forward(x),
                self.b3_2a.forward(&h3),
                self.b3_2b.forward(&h3),
                self.d3a.forward(&d),
                self.d3b.forward(&d),
                self.pool.forward(&pooled),
            ],
            1,
        )
    }
}

/// The FID Inception-v3 feature extractor.
pub struct InceptionV3 {
    vs: nn::VarStore,
    stem: [BasicConv; 5],
    mixed: Vec<Box<dyn Module>>,
}

impl std::fmt::Debug for InceptionV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InceptionV3({:?})", self.vs.device())
    }
}

impl InceptionV3 {
    /// The network with untrained weights (variable names as in pytorch-fid's state dict).
    pub fn new(device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let r = vs.root();
        let stem = [
            BasicConv::square(&r / "Conv2d_1a_3x3", 3, 32, 3, 2, 0),
            BasicConv::square(&r / "Conv2d_2a_3x3", 32, 32, 3, 1, 0),
            BasicConv::square(&r / "Conv2d_2b_3x3", 32, 64, 3, 1, 1),
            BasicConv::square(&r / "Conv2d_3b_1x1", 64, 80, 1, 1, 0),
            BasicConv::square(&r / "Conv2d_4a_3x3", 80, 192, 3, 1, 0),
        ];
        let mixed: Vec<Box<dyn Module>> = vec![
            Box::new(BlockA::new(&r / "Mixed_5b", 192, 32)),
            Box::new(BlockA::new(&r / "Mixed_5c", 256, 64)),
            Box::new(BlockA::new(&r / "Mixed_5d", 288, 64)),
            Box::new(BlockB::new(&r / "Mixed_6a", 288)),
            Box::new(BlockC::new(&r / "Mixed_6b", 768, 128)),
            Box::new(BlockC::new(&r / "Mixed_6c", 768, 160)),
            Box::new(BlockC::new(&r / "Mixed_6d", 768, 160)),
            Box::new(BlockC::new(&r / "Mixed_6e", 768, 192)),
            Box::new(BlockD::new(&r / "Mixed_7a", 768)),
            Box::new(BlockE::new(&r / "Mixed_7b", 1280, false)),
            Box::new(BlockE::new(&r / "Mixed_7c", 2048, true)),
        ];
        Self { vs, stem, mixed }
    }

    /// Loads the weights from `path`: a safetensors file, or a `torch.save` state dict that
    /// libtorch can read (zip format). Every tensor of the network must be present with its
    /// shape; extra entries (the classifier `fc`, `num_batches_tracked`) are ignored.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        ensure!(path.exists(), "Inception weights {} do not exist", path.display());
        let tensors: HashMap<String, Tensor> = if path.extension().and_then(|e| e.to_str()) == Some("safetensors") {
            Tensor::read_safetensors(path)
                .with_context(|| format!("cannot read {} as safetensors (truncated?)", path.display()))?
        } else {
            Tensor::loadz_multi(path).map_err(|e| {
                // libtorch's message carries a C++ backtrace; its first line says enough.
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                anyhow::anyhow!(
                    "cannot read {} as tensors ({first}); libtorch cannot read the pickled state dicts of \
                     Python's torch.save — convert the file once with `.venv/bin/python \
                     scripts/convert_inception.py {} inception.safetensors` and pass the .safetensors file",
                    path.display(),
                    path.display()
                )
            })?
        }
        .into_iter()
        .collect();
        let model = Self::new(device);
        let _guard = tch::no_grad_guard();
        for (name, mut var) in model.vs.variables() {
            let src = tensors.get(&name).with_context(|| {
                format!("{} has no tensor `{name}`: not the FID Inception weights?", path.display())
            })?;
            ensure!(
                src.size() == var.size(),
                "{}: `{name}` has shape {:?}, the network needs {:?}",
                path.display(),
                src.size(),
                var.size()
            );
            var.copy_(&src.to_kind(Kind::Float));
        }
        Ok(model)
    }

    /// Saves the weights as safetensors (used by tests and conversions).
    pub fn save(&self, path: &Path) -> Result<()> {
        mmlatent_train::checkpoint::save_varstore(&self.vs, path)
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Converts images `[N, 1|3, H, W]` in `[0, 1]` (any device) to the network's input:
    /// RGB, 299×299 by bilinear resizing (`align_corners=False`), scaled to `[-1, 1]`.
    pub fn prepare(&self, images: &Tensor) -> Result<Tensor> {
        let size = images.size();
        ensure!(
            size.len() == 4 && (size[1] == 1 || size[1] == 3),
            "Inception reads images of shape [N, 1|3, H, W], got {size:?}"
        );
        let x = images.to_device(self.device()).to_kind(Kind::Float);
        let x = if size[1] == 1 { x.repeat([1, 3, 1, 1]) } else { x };
        let x = x.upsample_bilinear2d([INPUT_SIZE, INPUT_SIZE], false, None, None);
        Ok(x * 2.0 - 1.0)
    }

    /// Pool features `[N, 2048]` of prepared inputs (see [`InceptionV3::prepare`]).
    pub fn forward_prepared(&self, x: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        let [c1a, c2a, c2b, c3b, c4a] = &self.stem;
        let h = max_pool_3x3(&c2b.forward(&c2a.forward(&c1a.forward(x))), 2, 0);
        let h = max_pool_3x3(&c4a.forward(&c3b.forward(&h)), 2, 0);
        let h = self.mixed.iter().fold(h, |h, block| block.forward(&h));
        h.mean_dim(&[2i64, 3][..], false, Kind::Float)
    }

    /// Pool features `[N, 2048]` (f32, CPU) of images in `[0, 1]`, in batches of `batch`.
    pub fn features(&self, images: &Tensor, batch: i64) -> Result<Tensor> {
        let n = images.size().first().copied().unwrap_or(0);
        if n == 0 {
            bail!("no images to compute Inception features of");
        }
        let batch = batch.max(1);
        let parts: Vec<Tensor> = (0..n)
            .step_by(batch as usize)
            .map(|s| {
                Ok(self.forward_prepared(&self.prepare(&images.narrow(0, s, batch.min(n - s)))?).to_device(Device::Cpu))
            })
            .collect::<Result<_>>()?;
        Ok(Tensor::cat(&parts, 0))
    }
}
