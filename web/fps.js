// Frames per second over the last few frames: a moving figure that follows a change of size or
// style within seconds, unlike an average since Start.

export class FpsMeter {
  constructor(window = 8) {
    this.window = window;
    this.times = [];
  }

  // Call once per finished frame; returns the fps so far (0 until two frames have finished).
  tick(now = performance.now()) {
    this.times.push(now);
    if (this.times.length > this.window + 1) this.times.shift();
    return this.fps();
  }

  fps() {
    const n = this.times.length;
    return n < 2 ? 0 : (1000 * (n - 1)) / (this.times[n - 1] - this.times[0]);
  }

  reset() {
    this.times = [];
  }
}
