// Audio in the browser: WebCodecs Opus decode into an AudioWorklet with adaptive jitter
// buffers, and microphone capture encoded to Opus 20 ms frames.

export const supportsWebCodecs = typeof AudioDecoder !== 'undefined' && typeof AudioEncoder !== 'undefined';

const FRAME = 960;

/** A Hann window, so that one tone does not leak into the measure of another. */
const HANN = Float32Array.from({ length: FRAME }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (FRAME - 1)));

/**
 * Goertzel power of `freq` in a 20 ms frame (48 kHz), Hann-windowed and normalised so that
 * a sine of amplitude a gives a²/4.
 */
function goertzel(x, freq) {
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / 48000);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] * HANN[i] * 2 + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.length * x.length);
}

function db(power) {
  return power > 1e-12 ? 10 * Math.log10(power) : -120;
}

/**
 * Statistics the page exposes (window.stentorStats) so that people and tests can see what
 * is heard: decoded frames, level, and the strength of two reference tones.
 */
export const stats = {
  decodedFrames: 0,
  levelDb: -120,
  tones: { 440: -120, 1000: -120 },
  bufferedMs: 0,
  underruns: 0,
  sentFrames: 0,
  playedSeconds: 0,
  // Wall-clock milliseconds (performance.timeOrigin + now) at which the 1 kHz marker tone
  // started in the microphone, and in what this page played: mouth-to-ear measurements.
  mouth: [],
  ear: [],
};
window.stentorStats = stats;

/** Where context time `t` (s) of `ctx` is on the wall clock (ms): when that sample is heard. */
function wallOf(ctx, t) {
  const ts = ctx.getOutputTimestamp();
  return performance.timeOrigin + ts.performanceTime + (t - ts.contextTime) * 1000;
}

function remember(list, at) {
  list.push(at);
  if (list.length > 500) list.shift();
}

const MARKER_ONSET_DB = -36;
const MARKER_QUIET_DB = -50;

function measure(pcm) {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
  const level = db(sum / pcm.length);
  stats.levelDb = 0.8 * stats.levelDb + 0.2 * level;
  for (const f of [440, 1000]) stats.tones[f] = 0.8 * stats.tones[f] + 0.2 * db(goertzel(pcm, f));
}

/** The audio output: a worklet that mixes any number of decoded streams. */
export class AudioOut {
  static async start() {
    const ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
    await ctx.audioWorklet.addModule('/assets/playback-worklet.js');
    await ctx.audioWorklet.addModule('/assets/capture-worklet.js');
    const node = new AudioWorkletNode(ctx, 'stentor-playback', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    node.connect(ctx.destination);
    node.port.onmessage = (e) => {
      if (e.data.onset !== undefined) return remember(stats.ear, wallOf(ctx, e.data.onset));
      stats.bufferedMs = e.data.bufferedMs;
      stats.underruns = e.data.underruns;
      stats.playedSeconds = ctx.currentTime;
    };
    await ctx.resume();
    return new AudioOut(ctx, node);
  }

  constructor(ctx, node) {
    this.ctx = ctx;
    this.node = node;
    this.decoders = new Map();
    this.measured = 'mix';
  }

  /** Decodes one Opus packet of stream `id` (`mix` for listeners, a user id for speakers). */
  push(id, packet) {
    let d = this.decoders.get(id);
    if (!d || d.state === 'closed') {
      d = new AudioDecoder({
        output: (data) => this.#deliver(id, data),
        error: (e) => console.warn('audio decoder', e.message),
      });
      d.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
      d.ts = 0;
      this.decoders.set(id, d);
    }
    d.decode(new EncodedAudioChunk({ type: 'key', timestamp: d.ts, data: packet }));
    d.ts += 20000;
  }

  #deliver(id, data) {
    const pcm = new Float32Array(data.numberOfFrames);
    data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
    data.close();
    stats.decodedFrames += 1;
    measure(pcm);
    this.node.port.postMessage({ id: String(id), pcm }, [pcm.buffer]);
  }

  /** Forgets a stream (a speaker who left). */
  drop(id) {
    const d = this.decoders.get(id);
    if (d && d.state !== 'closed') d.close();
    this.decoders.delete(id);
    this.node.port.postMessage({ id: String(id), drop: true });
  }

  /** Drops every stream (after a role change, or a reconnect). */
  reset() {
    for (const id of [...this.decoders.keys()]) this.drop(id);
  }

  close() {
    this.reset();
    this.ctx.close().catch(() => {});
  }
}

/** The microphone, encoded to 20 ms Opus packets handed to `send(seq, bytes)`. */
export class Mic {
  static async start(out, send) {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    return new Mic(out.ctx, stream, send);
  }

  constructor(ctx, stream, send) {
    this.stream = stream;
    this.seq = 0;
    this.ts = 0;
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const bytes = new Uint8Array(5 + chunk.byteLength);
        bytes[0] = 0x01;
        new DataView(bytes.buffer).setUint32(1, this.seq >>> 0);
        this.seq += 1;
        chunk.copyTo(bytes.subarray(5));
        stats.sentFrames += 1;
        send(bytes);
      },
      error: (e) => console.warn('audio encoder', e.message),
    });
    this.encoder.configure({
      codec: 'opus',
      sampleRate: 48000,
      numberOfChannels: 1,
      bitrate: 32000,
      opus: { frameDuration: 20000 },
    });
    this.source = ctx.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(ctx, 'stentor-capture', { numberOfOutputs: 1, outputChannelCount: [1] });
    this.sink = ctx.createGain();
    this.sink.gain.value = 0;
    this.source.connect(this.node).connect(this.sink).connect(ctx.destination);
    this.quiet = 0;
    this.node.port.onmessage = (e) => {
      if (this.encoder.state !== 'configured') return;
      const { pcm } = e.data;
      // The marker tone starting in the microphone: when its first frame was captured (it
      // reached this page 20 ms later, when the frame was whole).
      const marker = db(goertzel(pcm, 1000));
      if (marker > MARKER_ONSET_DB && this.quiet >= 3) remember(stats.mouth, performance.timeOrigin + performance.now() - 20);
      this.quiet = marker < MARKER_QUIET_DB ? this.quiet + 1 : 0;
      const data = new AudioData({
        format: 'f32-planar',
        sampleRate: 48000,
        numberOfFrames: FRAME,
        numberOfChannels: 1,
        timestamp: this.ts,
        data: pcm,
      });
      this.ts += 20000;
      this.encoder.encode(data);
      data.close();
    };
  }

  stop() {
    this.node.port.onmessage = null;
    this.source.disconnect();
    this.node.disconnect();
    this.sink.disconnect();
    for (const t of this.stream.getTracks()) t.stop();
    if (this.encoder.state !== 'closed') this.encoder.close();
  }
}
