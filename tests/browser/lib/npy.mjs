// NumPy .npy reader (format versions 1-3, little-endian, C order) for node and the browser.
// parseNpy(bytes) -> { dtype: '<f4' | ..., shape: number[], data: Float32Array | Float64Array | Int32Array | ... }

const TYPES = {
  '<f4': Float32Array,
  '<f8': Float64Array,
  '<i4': Int32Array,
  '<i2': Int16Array,
  '|i1': Int8Array,
  '<u4': Uint32Array,
  '<u2': Uint16Array,
  '|u1': Uint8Array,
  '|b1': Uint8Array,
};

export function parseNpy(input) {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new Error('not a .npy file (bad magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen;
  let offset;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new Error(`unsupported .npy version ${major}`);
  }
  const header = new TextDecoder().decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`bad .npy header: ${header}`);
  if (fortran === 'True') throw new Error('Fortran-order .npy files are not supported');
  const Type = TYPES[descr];
  if (!Type) throw new Error(`unsupported .npy dtype ${descr}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = offset + headerLen;
  // A copy into a fresh, aligned buffer (a node Buffer's slice() would be a view of its pool).
  const body = new Uint8Array(bytes.subarray(start, start + count * Type.BYTES_PER_ELEMENT));
  if (body.byteLength !== count * Type.BYTES_PER_ELEMENT) {
    throw new Error(`.npy body holds ${body.byteLength} bytes, shape ${JSON.stringify(shape)} needs ${count * Type.BYTES_PER_ELEMENT}`);
  }
  return { dtype: descr, shape, data: new Type(body.buffer, 0, count) };
}
