// The progress event of loadLayersModel: a plain object with the fields
// {loadedBytes, totalBytes, fraction, url, fromCache, phase} that also behaves as the
// number `fraction`, because tfjs's onProgress receives a number and pages written for
// tfjs do `onProgress: (f) => bar.value = f * 100`. valueOf / Symbol.toPrimitive make
// `e * 100`, `+e`, `e >= 1`, `Math.round(e * 100)` and `${e}` work; toFixed /
// toPrecision / toLocaleString forward to the number. Only `typeof e` and `e === 1`
// tell it apart from a number.
class LoadProgress {
  constructor(loadedBytes, totalBytes, fraction, url, fromCache, phase) {
    this.loadedBytes = loadedBytes;
    this.totalBytes = totalBytes;
    this.fraction = fraction;
    this.url = url;
    this.fromCache = fromCache;
    this.phase = phase;
  }
  valueOf() {
    return this.fraction;
  }
  toString() {
    return String(this.fraction);
  }
  [Symbol.toPrimitive](hint) {
    return hint === 'string' ? String(this.fraction) : this.fraction;
  }
  toFixed(digits) {
    return this.fraction.toFixed(digits);
  }
  toPrecision(precision) {
    return this.fraction.toPrecision(precision);
  }
  toLocaleString(locales, options) {
    return this.fraction.toLocaleString(locales, options);
  }
}

export function progressEvent(loadedBytes, totalBytes, fraction, url, fromCache, phase) {
  return new LoadProgress(loadedBytes, totalBytes, fraction, url, fromCache, phase);
}
