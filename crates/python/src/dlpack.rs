//! Tensors between libtorch (tch) and Python's torch without copies, through DLPack, the
//! tensor-exchange ABI both sides speak (`torch.utils.dlpack`): a `DLManagedTensor` carries a
//! pointer to the data, its shape, strides, element type and device, and a deleter its consumer
//! calls when done. The structs below are DLPack's C ABI (`dlpack.h`, legacy unversioned form,
//! which torch still produces from `Tensor.__dlpack__()` and consumes in `torch.from_dlpack`).
//!
//! Exported tensors own a reference to the tch tensor until torch calls the deleter; imported
//! ones are views of the producer's memory, valid until [`Imported`] is dropped (which calls the
//! producer's deleter), so they must not outlive it.

use anyhow::{bail, ensure, Result};
use std::ffi::c_void;
use tch::{Device, Kind, Tensor};

/// `DLDevice`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DlDevice {
    pub device_type: i32,
    pub device_id: i32,
}

/// `DLDataType`: type code, bits per lane, lanes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DlDataType {
    pub code: u8,
    pub bits: u8,
    pub lanes: u16,
}

/// `DLTensor`.
#[repr(C)]
pub struct DlTensor {
    pub data: *mut c_void,
    pub device: DlDevice,
    pub ndim: i32,
    pub dtype: DlDataType,
    pub shape: *mut i64,
    /// In elements; null means compact row-major.
    pub strides: *mut i64,
    pub byte_offset: u64,
}

/// `DLManagedTensor`.
#[repr(C)]
pub struct DlManagedTensor {
    pub dl_tensor: DlTensor,
    pub manager_ctx: *mut c_void,
    pub deleter: Option<unsafe extern "C" fn(*mut DlManagedTensor)>,
}

const DL_CPU: i32 = 1;
const DL_CUDA: i32 = 2;
const DL_INT: u8 = 0;
const DL_UINT: u8 = 1;
const DL_FLOAT: u8 = 2;
const DL_BFLOAT: u8 = 4;
const DL_BOOL: u8 = 6;

const KINDS: [(Kind, u8, u8); 10] = [
    (Kind::Uint8, DL_UINT, 8),
    (Kind::Int8, DL_INT, 8),
    (Kind::Int16, DL_INT, 16),
    (Kind::Int, DL_INT, 32),
    (Kind::Int64, DL_INT, 64),
    (Kind::Half, DL_FLOAT, 16),
    (Kind::Float, DL_FLOAT, 32),
    (Kind::Double, DL_FLOAT, 64),
    (Kind::BFloat16, DL_BFLOAT, 16),
    (Kind::Bool, DL_BOOL, 8),
];

fn dtype_of(kind: Kind) -> Result<DlDataType> {
    match KINDS.iter().find(|(k, _, _)| *k == kind) {
        Some(&(_, code, bits)) => Ok(DlDataType { code, bits, lanes: 1 }),
        None => bail!("tensors of kind {kind:?} cannot be passed to Python"),
    }
}

fn kind_of(dtype: DlDataType) -> Result<Kind> {
    match KINDS.iter().find(|&&(_, code, bits)| DlDataType { code, bits, lanes: 1 } == dtype) {
        Some(&(kind, _, _)) => Ok(kind),
        None => bail!("unsupported tensor element type (DLPack code {}, {} bits)", dtype.code, dtype.bits),
    }
}

/// The owner of an exported tensor: the managed struct torch reads, the shape and strides it
/// points to, and the tensor that keeps the data alive.
struct Exported {
    managed: DlManagedTensor,
    _shape: Vec<i64>,
    _strides: Vec<i64>,
    _tensor: Tensor,
}

unsafe extern "C" fn delete_exported(managed: *mut DlManagedTensor) {
    if !managed.is_null() {
        // SAFETY: `manager_ctx` is the `Box<Exported>` leaked by `export`, and DLPack calls the
        // deleter once.
        drop(unsafe { Box::from_raw((*managed).manager_ctx as *mut Exported) });
    }
}

/// Hands `tensor` over as a `DLManagedTensor` (no copy); the consumer must call its deleter.
pub fn export(tensor: Tensor) -> Result<*mut DlManagedTensor> {
    let dtype = dtype_of(tensor.kind())?;
    let device = match tensor.device() {
        Device::Cpu => DlDevice { device_type: DL_CPU, device_id: 0 },
        Device::Cuda(i) => DlDevice { device_type: DL_CUDA, device_id: i as i32 },
        other => bail!("tensors on {other:?} cannot be passed to Python"),
    };
    let mut shape = tensor.size();
    let mut strides = tensor.stride();
    let data = if tensor.numel() == 0 { std::ptr::null_mut() } else { tensor.data_ptr() };
    let mut owner = Box::new(Exported {
        managed: DlManagedTensor {
            dl_tensor: DlTensor {
                data,
                device,
                ndim: shape.len() as i32,
                dtype,
                shape: shape.as_mut_ptr(),
                strides: strides.as_mut_ptr(),
                byte_offset: 0,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_exported),
        },
        _shape: vec![],
        _strides: vec![],
        _tensor: tensor,
    });
    // The vectors' buffers do not move when the vectors move into the box.
    owner._shape = shape;
    owner._strides = strides;
    let raw = Box::into_raw(owner);
    // SAFETY: `raw` is a valid, uniquely owned `Exported`.
    unsafe {
        (*raw).managed.manager_ctx = raw as *mut c_void;
        Ok(&mut (*raw).managed)
    }
}

/// A tensor viewing memory of another framework's `DLManagedTensor`, which is released (its
/// deleter called) when this is dropped.
pub struct Imported {
    tensor: Option<Tensor>,
    managed: *mut DlManagedTensor,
}

impl Imported {
    /// Views `managed` as a tch tensor (no copy), taking over the call of its deleter.
    ///
    /// # Safety
    /// `managed` must be a valid `DLManagedTensor` that nothing else will delete.
    pub unsafe fn new(managed: *mut DlManagedTensor) -> Result<Self> {
        ensure!(!managed.is_null(), "null DLPack tensor");
        // From here on `Drop` releases it, whatever happens.
        let mut imported = Self { tensor: None, managed };
        // SAFETY: valid per the contract.
        let t = unsafe { &(*managed).dl_tensor };
        let kind = kind_of(t.dtype)?;
        let device = match t.device.device_type {
            DL_CPU => Device::Cpu,
            DL_CUDA => Device::Cuda(t.device.device_id as usize),
            other => bail!("tensors on DLPack device type {other} cannot be used (CPU and CUDA only)"),
        };
        ensure!(t.ndim >= 0, "DLPack tensor with {} dimensions", t.ndim);
        let ndim = t.ndim as usize;
        let shape: Vec<i64> =
            if ndim == 0 { vec![] } else { unsafe { std::slice::from_raw_parts(t.shape, ndim) }.to_vec() };
        let strides: Vec<i64> = if t.strides.is_null() {
            let mut s = vec![1; ndim];
            for d in (0..ndim.saturating_sub(1)).rev() {
                s[d] = s[d + 1] * shape[d + 1];
            }
            s
        } else if ndim == 0 {
            vec![]
        } else {
            unsafe { std::slice::from_raw_parts(t.strides, ndim) }.to_vec()
        };
        let tensor = if shape.contains(&0) {
            Tensor::f_zeros(&shape, (kind, device))?
        } else {
            // SAFETY: the producer keeps the memory alive until its deleter runs in `drop`,
            // after the view is dropped.
            let data = unsafe { (t.data as *const u8).add(t.byte_offset as usize) };
            unsafe { Tensor::f_from_blob(data, &shape, &strides, kind, device) }?
        };
        imported.tensor = Some(tensor);
        Ok(imported)
    }

    /// The view (valid while `self` lives).
    pub fn tensor(&self) -> &Tensor {
        self.tensor.as_ref().expect("set by new")
    }
}

impl Drop for Imported {
    fn drop(&mut self) {
        self.tensor = None;
        // SAFETY: `managed` is valid and ours to release, once.
        unsafe {
            if let Some(deleter) = (*self.managed).deleter {
                deleter(self.managed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_goes_out_and_back_without_a_copy() {
        let original = Tensor::arange(24, (Kind::Float, Device::Cpu)).reshape([2, 3, 4]);
        let transposed = original.transpose(1, 2); // strided, not contiguous
        let managed = export(transposed.shallow_clone()).unwrap();
        {
            let back = unsafe { Imported::new(managed) }.unwrap();
            assert_eq!(back.tensor().size(), [2, 4, 3]);
            assert_eq!(back.tensor().stride(), transposed.stride());
            assert!(back.tensor().equal(&transposed));
            assert_eq!(back.tensor().data_ptr(), original.data_ptr(), "the same memory");
        } // the deleter ran here: `original` is still fine
        assert_eq!(original.double_value(&[1, 2, 3]), 23.0);
    }

    #[test]
    fn every_kind_torch_uses_round_trips() {
        for &(kind, _, _) in &KINDS {
            let t = Tensor::ones([3], (Kind::Float, Device::Cpu)).to_kind(kind);
            let back = unsafe { Imported::new(export(t.shallow_clone()).unwrap()) }.unwrap();
            assert_eq!(back.tensor().kind(), kind);
            let as_double = |x: &Tensor| x.to_kind(Kind::Double);
            assert!(as_double(back.tensor()).equal(&as_double(&t)), "{kind:?}");
        }
        let empty = unsafe { Imported::new(export(Tensor::zeros([0, 2], (Kind::Int64, Device::Cpu))).unwrap()) };
        assert_eq!(empty.unwrap().tensor().size(), [0, 2]);
        assert!(kind_of(DlDataType { code: 5, bits: 64, lanes: 1 }).unwrap_err().to_string().contains("code 5"));
    }
}
