//! A dense, row-major `f32` tensor: the one value type every backend exchanges.

use crate::error::{CoreError, Result};

/// A dense row-major tensor of `f32`. Layout is NHWC for images (tfjs `channels_last`).
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head: Vec<f32> = self.data.iter().take(6).copied().collect();
        write!(
            f,
            "Tensor{:?} {:?}{}",
            self.shape,
            head,
            if self.data.len() > 6 { "…" } else { "" }
        )
    }
}

/// Number of elements of a shape, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// A tensor from a shape and its data; fails when the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        match element_count(&shape) {
            Some(n) if n == data.len() => Ok(Tensor { shape, data }),
            _ => Err(CoreError::DataLength {
                shape,
                len: data.len(),
            }),
        }
    }

    /// A tensor filled with zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = element_count(&shape).expect("shape overflow in Tensor::zeros");
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    /// A rank-1 tensor holding `data`.
    pub fn vector(data: Vec<f32>) -> Self {
        Tensor {
            shape: vec![data.len()],
            data,
        }
    }

    /// A rank-0 tensor.
    pub fn scalar(v: f32) -> Self {
        Tensor {
            shape: vec![],
            data: vec![v],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }

    /// Same data, another shape with the same element count.
    pub fn reshaped(self, shape: Vec<usize>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }
}
