// Capture worklet: cuts the microphone into 20 ms frames (960 samples at 48 kHz) for the
// encoder on the main thread.

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Float32Array(960);
    this.filled = 0;
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        this.frame[this.filled++] = input[i];
        if (this.filled === this.frame.length) {
          this.port.postMessage({ pcm: this.frame }, [this.frame.buffer]);
          this.frame = new Float32Array(960);
          this.filled = 0;
        }
      }
    }
    if (outputs[0] && outputs[0][0]) outputs[0][0].fill(0);
    return true;
  }
}

registerProcessor('stentor-capture', Capture);
