//! Tensors brought to the host as plain Rust data: the one place where a tensor's elements become
//! a `Vec` (or image bytes), whatever the tensor's device, dtype, memory format or strides.
//!
//! The networks' outputs are not always contiguous: the convolutional stacks run channels-last,
//! so a decoder's `[N, C, H, W]` output is laid out as NHWC in memory, and a transposed or
//! narrowed tensor has strides of its own. Reading such a tensor with `view([-1])` fails, and
//! reading its storage directly would scramble the pixels; these helpers always copy the
//! elements out in logical (row-major, NCHW) order.

use anyhow::{Context, Result};
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// Every element of `t`, in logical row-major order, converted to `T`'s kind (`f32`, `i64`,
/// `u8`, …) and copied to the host.
pub fn to_vec<T: Element + Copy>(t: &Tensor) -> Result<Vec<T>> {
    let flat = t.to_device(Device::Cpu).to_kind(T::KIND).contiguous().view([-1]);
    Vec::<T>::try_from(&flat).with_context(|| format!("cannot read a tensor of shape {:?} to the host", t.size()))
}

/// Image values in `[0, 1]` (any shape, e.g. `[N, C, H, W]`) as bytes 0–255 in logical
/// row-major order: clamped, scaled and rounded to the nearest integer.
pub fn image_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let scaled = t.to_device(Device::Cpu).to_kind(Kind::Float).clamp(0.0, 1.0).g_mul_scalar(255.0).round();
    to_vec::<u8>(&scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channels-last tensor (as the conv decoders return) and a transposed one read back in
    /// logical order, the same as their contiguous copies.
    #[test]
    fn non_contiguous_layouts_read_in_logical_order() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let expected: Vec<f32> = (0..120).map(|v| v as f32).collect();
        let channels_last = crate::nets::image::channels_last(&t);
        assert!(!channels_last.is_contiguous());
        assert_eq!(to_vec::<f32>(&channels_last).unwrap(), expected);
        let transposed = t.transpose(1, 3);
        assert_eq!(to_vec::<f32>(&transposed).unwrap(), to_vec::<f32>(&transposed.contiguous()).unwrap());
        assert_eq!(to_vec::<i64>(&t.narrow(3, 1, 2)).unwrap()[..2], [1, 2]);
    }

    /// Image bytes round to the nearest level and clamp out-of-range values.
    #[test]
    fn image_bytes_round_and_clamp() {
        let t = Tensor::from_slice(&[-0.5f32, 0.0, 0.5, 1.0 / 255.0 * 10.4, 1.0, 2.0]);
        assert_eq!(image_bytes(&t).unwrap(), vec![0, 0, 128, 10, 255, 255]);
    }
}
