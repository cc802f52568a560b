//! The shape of each `predict` input: checked against its data, or inferred from the model.
//! Platform-independent (no JavaScript types), so it is unit-tested natively.

/// A model input as `predict` sees it.
#[derive(Debug, Clone, Copy)]
pub struct InputSlot<'a> {
    pub index: usize,
    pub name: &'a str,
    /// The model's shape: `None` where the size is open (the batch, usually).
    pub model_shape: &'a [Option<usize>],
}

impl InputSlot<'_> {
    fn label(&self) -> String {
        format!("input {} (\"{}\")", self.index, self.name)
    }
}

/// `[1,224,224,3]`.
pub fn dims_text(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// `[null,224,224,3]`.
pub fn model_shape_text(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| "null".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", parts.join(","))
}

/// Turns a shape given from JavaScript (numbers) into dimensions: each must be a
/// non-negative integer.
pub fn dims_from_numbers(slot: &InputSlot<'_>, numbers: &[f64]) -> Result<Vec<usize>, String> {
    numbers
        .iter()
        .enumerate()
        .map(|(axis, &d)| {
            if d.is_finite() && d >= 0.0 && d.fract() == 0.0 && d <= u32::MAX as f64 {
                Ok(d as usize)
            } else {
                Err(format!(
                    "{}: shape[{axis}] is {}, but dimensions must be non-negative integers",
                    slot.label(),
                    webinfer_tfjs::Num::F64(d)
                ))
            }
        })
        .collect()
}

/// The shape of an input holding `len` values: `given` checked against `len`, or (when
/// no shape is given) the model's shape with its one open dimension inferred from `len`.
///
/// Whether a given shape fits the model is the engine's check (`webinfer::Model::predict`);
/// this only makes sure the data and the shape agree, so the engine never sees a tensor
/// whose length is wrong.
pub fn resolve(
    slot: &InputSlot<'_>,
    len: usize,
    given: Option<&[usize]>,
) -> Result<Vec<usize>, String> {
    match given {
        Some(dims) => {
            let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            match count {
                Some(count) if count == len => Ok(dims.to_vec()),
                Some(count) => Err(format!(
                    "{}: the data holds {len} values, but shape {} needs {count}",
                    slot.label(),
                    dims_text(dims)
                )),
                None => Err(format!(
                    "{}: shape {} is too large",
                    slot.label(),
                    dims_text(dims)
                )),
            }
        }
        None => infer(slot, len),
    }
}

/// The model's shape, its single open dimension (if any) sized to fit `len` values.
fn infer(slot: &InputSlot<'_>, len: usize) -> Result<Vec<usize>, String> {
    let open = slot.model_shape.iter().filter(|d| d.is_none()).count();
    let known = slot
        .model_shape
        .iter()
        .flatten()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = model_shape_text(slot.model_shape);
    let no_fit = || {
        format!(
            "{}: the data holds {len} values, which does not fit the model's shape {expected}; pass the shape explicitly",
            slot.label()
        )
    };
    let Some(known) = known else {
        return Err(no_fit());
    };
    match open {
        0 if known == len => Ok(slot.model_shape.iter().flatten().copied().collect()),
        1 if known > 0 && len % known == 0 => {
            let fill = len / known;
            Ok(slot
                .model_shape
                .iter()
                .map(|d| d.unwrap_or(fill))
                .collect())
        }
        0 | 1 => Err(no_fit()),
        _ => Err(format!(
            "{}: the model's shape {expected} has {open} open dimensions; pass the shape explicitly",
            slot.label()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(shape: &[Option<usize>]) -> InputSlot<'_> {
        InputSlot {
            index: 0,
            name: "input_1",
            model_shape: shape,
        }
    }

    const IMAGE: [Option<usize>; 4] = [None, Some(4), Some(4), Some(3)];

    #[test]
    fn given_shape_must_hold_the_data() {
        assert_eq!(
            resolve(&slot(&IMAGE), 48, Some(&[1, 4, 4, 3])),
            Ok(vec![1, 4, 4, 3])
        );
        let err = resolve(&slot(&IMAGE), 47, Some(&[1, 4, 4, 3])).unwrap_err();
        assert_eq!(
            err,
            "input 0 (\"input_1\"): the data holds 47 values, but shape [1,4,4,3] needs 48"
        );
        let huge = [usize::MAX, 2];
        assert!(resolve(&slot(&IMAGE), 1, Some(&huge))
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn a_missing_shape_fills_the_open_dimension() {
        assert_eq!(resolve(&slot(&IMAGE), 96, None), Ok(vec![2, 4, 4, 3]));
        let err = resolve(&slot(&IMAGE), 50, None).unwrap_err();
        assert!(
            err.contains("50 values") && err.contains("[null,4,4,3]"),
            "{err}"
        );
        let fixed = [Some(2), Some(3)];
        assert_eq!(resolve(&slot(&fixed), 6, None), Ok(vec![2, 3]));
        assert!(resolve(&slot(&fixed), 5, None).is_err());
        let two_open = [None, None, Some(3)];
        assert!(resolve(&slot(&two_open), 6, None)
            .unwrap_err()
            .contains("2 open dimensions"));
        let zero = [None, Some(0)];
        assert!(resolve(&slot(&zero), 4, None).is_err());
    }

    #[test]
    fn dimensions_are_non_negative_integers() {
        assert_eq!(
            dims_from_numbers(&slot(&IMAGE), &[1.0, 2.0]),
            Ok(vec![1, 2])
        );
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY, 1e12] {
            let err = dims_from_numbers(&slot(&IMAGE), &[1.0, bad]).unwrap_err();
            assert!(err.contains("shape[1]"), "{err}");
        }
    }
}
