//! Reading and writing single image files (PNG, and JPEG for photo datasets) as modality
//! items. Pixels are handled as `u8` in channel-major order `[C, H, W]`.

use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};
use mmlatent_core::{ModalityKind, ModalitySpec};
use std::path::Path;
use tch::{Kind, Tensor};

/// Reads a PNG (or any format the `image` crate knows) as one item `[C, H, W]` in `[0, 1]`
/// of `spec`, which must be an image modality of the file's size.
pub fn read_item(path: &Path, spec: &ModalitySpec) -> Result<Tensor> {
    let ModalityKind::Image { channels, height, width } = spec.kind else {
        bail!("modality {} is not an image; cannot read {}", spec.name, path.display());
    };
    let context = || format!("cannot use {} as modality {}", path.display(), spec.name);
    let img = decode(path).with_context(context)?;
    let colour = img.color();
    let grey = colour.channel_count() <= 2;
    if grey && channels == 3 {
        bail!("{}: a greyscale image, but modality {} holds colour (RGB) images", path.display(), spec.name);
    }
    if !grey && channels == 1 {
        bail!("{}: a colour image, but modality {} holds greyscale images", path.display(), spec.name);
    }
    if colour.has_alpha() {
        eprintln!("warning: {}: its alpha channel is ignored (modality {} has none)", path.display(), spec.name);
    }
    let data = check_size(&img, path, height as usize, width as usize)
        .map(|_| to_chw(&img, channels as usize))
        .with_context(context)?;
    Ok(Tensor::from_slice(&data).view([channels, height, width]).to_kind(Kind::Float) / 255.0)
}

/// Decodes an image file, detecting the format from its content.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    if !path.exists() {
        bail!("{}", crate::fsutil::unreachable(path, "image file"));
    }
    if !path.is_file() {
        bail!("{}: a folder, where an image file is expected", path.display());
    }
    ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable image", path.display()))
}

/// The pixels of `img` as `[C, H, W]` bytes with `channels` 1 (grey) or 3 (RGB).
pub fn to_chw(img: &DynamicImage, channels: usize) -> Vec<u8> {
    let hwc = if channels == 1 { img.to_luma8().into_raw() } else { img.to_rgb8().into_raw() };
    let plane = hwc.len() / channels;
    let mut chw = vec![0u8; hwc.len()];
    for (i, px) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            chw[c * plane + i] = v;
        }
    }
    chw
}

/// How a file stores its pixels, as far as reading it as a modality item is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Colour {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
}

impl Colour {
    pub fn of(img: &DynamicImage) -> Self {
        let c = img.color();
        match (c.channel_count() <= 2, c.has_alpha()) {
            (true, false) => Colour::Grey,
            (true, true) => Colour::GreyAlpha,
            (false, false) => Colour::Rgb,
            (false, true) => Colour::Rgba,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Colour::Grey => "greyscale",
            Colour::GreyAlpha => "greyscale with alpha",
            Colour::Rgb => "RGB",
            Colour::Rgba => "RGBA",
        }
    }
}

/// Reads an image file of exactly `height × width` pixels as `[C, H, W]` bytes, with how the
/// file stored them (greyscale is copied to every channel, alpha dropped).
pub fn read_u8(path: &Path, channels: usize, height: usize, width: usize) -> Result<(Vec<u8>, Colour)> {
    let img = decode(path)?;
    check_size(&img, path, height, width)?;
    Ok((to_chw(&img, channels), Colour::of(&img)))
}

fn check_size(img: &DynamicImage, path: &Path, height: usize, width: usize) -> Result<()> {
    if img.width() as usize != width || img.height() as usize != height {
        bail!("{}: image is {}×{}, expected {width}×{height}", path.display(), img.width(), img.height());
    }
    Ok(())
}

/// Reads an image file of any size, resized (bilinear) to `height × width`, as `[C, H, W]` bytes.
pub fn read_resized_u8(path: &Path, channels: usize, height: usize, width: usize) -> Result<Vec<u8>> {
    let img = decode(path)?;
    let img = if (img.width() as usize, img.height() as usize) == (width, height) {
        img
    } else {
        img.resize_exact(width as u32, height as u32, FilterType::Triangle)
    };
    Ok(to_chw(&img, channels))
}

/// Writes `[C, H, W]` bytes (C = 1 or 3) as a PNG.
pub fn write_png(path: &Path, chw: &[u8], channels: usize, height: usize, width: usize) -> Result<()> {
    let plane = height * width;
    anyhow::ensure!(
        chw.len() == channels * plane,
        "{}: {} bytes for a {channels}×{height}×{width} image",
        path.display(),
        chw.len()
    );
    let mut hwc = vec![0u8; chw.len()];
    for c in 0..channels {
        for i in 0..plane {
            hwc[i * channels + c] = chw[c * plane + i];
        }
    }
    let color = if channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    image::save_buffer_with_format(path, &hwc, width as u32, height as u32, color, image::ImageFormat::Png)
        .with_context(|| format!("{}: cannot write PNG", path.display()))
}
