// FlashHead live view: a photo and an audio file (or the microphone) in, the talking head out,
// each frame drawn when its own audio plays (protocol 2's audio spans, docs/protocol.md).
// The token goes in an Authorization header (upload) and in `start` (WebSocket): never in a URL.
"use strict";

const FRAME_SECONDS = 0.04;
const LEAD_SECONDS = 0.15;  // first frame's delay, so the schedule has room
const DRAW_TOLERANCE_SECONDS = 0.005;  // a frame this close to its audio is drawn now
const PACKET_SECONDS = 0.04;
const $ = (id) => document.getElementById(id);

// min/maxDrawOffsetMs: when a frame was drawn, relative to the start of its audio (the A/V offset).
const stats = { framesReceived: 0, framesDrawn: 0, staleFrames: 0, audioSamplesScheduled: 0, audioSamplesSent: 0,
                segments: 0, minDrawOffsetMs: Infinity, maxDrawOffsetMs: -Infinity, errors: [] };
window.flashheadLive = { stats, session: null };

function say(text) { $("status").textContent = text; }

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function uploadPhoto(file) {
  const body = new FormData();
  body.append("image", file);
  const response = await fetch("/v1/avatars", { method: "POST", body, headers: authHeaders() });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${answer.code}: ${answer.message}`);
  return answer.avatar_id;
}

// Float samples by stream offset: the audio each frame's span points at.
class SentAudio {
  constructor() { this.data = new Float32Array(1 << 16); this.length = 0; }
  add(samples) {
    while (this.length + samples.length > this.data.length) {
      const bigger = new Float32Array(this.data.length * 2);
      bigger.set(this.data.subarray(0, this.length));
      this.data = bigger;
    }
    this.data.set(samples, this.length);
    this.length += samples.length;
  }
  slice(start, end) { return this.data.slice(start, Math.min(end, this.length)); }
}

function toPcm16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
  return pcm.buffer;
}

function parseHeader(buffer) {
  const view = new DataView(buffer);
  if (view.getUint8(0) !== 70 || view.getUint8(1) !== 72) throw new Error("not a frame");
  const version = view.getUint8(2);
  if (version < 2) return { version, epoch: 0, start: 0, end: 0, size: 20, flags: 0 };
  return { version, epoch: view.getUint32(20, true), flags: view.getUint16(24, true), size: view.getUint16(26, true),
           start: Number(view.getBigUint64(28, true)), end: Number(view.getBigUint64(36, true)) };
}

class LiveSession {
  constructor(context) {
    this.context = context;
    this.sent = new SentAudio();
    this.playhead = 0;
    this.epoch = 0;
    this.canvas = $("view").getContext("2d");
    this.socket = null;
  }

  async open(avatarId) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
    socket.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("could not connect to /v1/stream"));
    });
    const start = { type: "start", avatar_id: avatarId, sample_rate: this.context.sampleRate, protocol: 2,
                    output: "jpeg" };
    const token = $("token").value.trim();
    if (token) start.token = token;
    socket.send(JSON.stringify(start));
    const ready = await new Promise((resolve, reject) => {
      socket.onmessage = (event) => resolve(JSON.parse(event.data));
      socket.onclose = (event) => reject(new Error(event.reason || `closed (${event.code})`));
    });
    if (ready.type !== "ready") throw new Error(`${ready.code}: ${ready.message}`);
    if (ready.protocol < 2) throw new Error("the server is too old for the live view (protocol 1)");
    socket.onmessage = (event) => this.receive(event.data).catch((error) => this.fail(error));
    socket.onclose = (event) => { if (event.code !== 1000) this.fail(new Error(event.reason || `closed (${event.code})`)); };
    this.socket = socket;
  }

  send(samples) {
    this.sent.add(samples);
    stats.audioSamplesSent += samples.length;
    this.socket.send(toPcm16(samples));
  }

  endSegment() { this.socket.send(JSON.stringify({ type: "segment_end" })); }

  interrupt() {
    this.epoch += 1;
    this.playhead = 0;
    this.socket.send(JSON.stringify({ type: "interrupt" }));
  }

  close() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "end" }));
  }

  async receive(data) {
    if (typeof data === "string") {
      const message = JSON.parse(data);
      if (message.type === "error") throw new Error(`${message.code}: ${message.message}`);
      if (message.type === "playback" && message.event === "segment_done") stats.segments += 1;
      return;
    }
    const header = parseHeader(data);
    if (header.epoch < this.epoch) { stats.staleFrames += 1; return; }
    stats.framesReceived += 1;
    const bitmap = await createImageBitmap(new Blob([data.slice(header.size)], { type: "image/jpeg" }));
    const now = this.context.currentTime;
    if (this.playhead < now + 0.02) this.playhead = now + LEAD_SECONDS;
    const at = this.playhead;
    this.playhead += FRAME_SECONDS;
    if (header.end > header.start && $("play-audio").checked) {
      const samples = this.sent.slice(header.start, header.end);
      const buffer = this.context.createBuffer(1, samples.length, this.context.sampleRate);
      buffer.copyToChannel(samples, 0);
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.connect(this.context.destination);
      source.start(at);
      stats.audioSamplesScheduled += samples.length;
    }
    // Video follows the audio clock: a timer runs on wall time, and the audio clock can fall behind it (a
    // busy machine delays the audio thread), so a frame whose timer fires before its audio is due waits again.
    const draw = () => {
      const early = at - this.context.currentTime;
      if (early > DRAW_TOLERANCE_SECONDS) { setTimeout(draw, early * 1000); return; }
      this.canvas.drawImage(bitmap, 0, 0, 512, 512);
      stats.framesDrawn += 1;
      const offset = (this.context.currentTime - at) * 1000;
      stats.minDrawOffsetMs = Math.min(stats.minDrawOffsetMs, offset);
      stats.maxDrawOffsetMs = Math.max(stats.maxDrawOffsetMs, offset);
    };
    draw();
  }

  fail(error) {
    stats.errors.push(String(error.message || error));
    say(`error: ${error.message || error}`);
  }
}

async function begin() {
  const photo = $("photo").files[0];
  if (!photo) throw new Error("pick a photo first");
  if (window.flashheadLive.session) stop();
  const context = new AudioContext();
  await context.resume();
  say("uploading the photo …");
  const avatarId = await uploadPhoto(photo);
  const session = new LiveSession(context);
  await session.open(avatarId);
  window.flashheadLive.session = session;
  $("stop").disabled = false;
  return session;
}

async function playFile() {
  const file = $("audio").files[0];
  if (!file) throw new Error("pick an audio file first");
  const session = await begin();
  const decoded = await session.context.decodeAudioData(await file.arrayBuffer());  // at the context's rate
  const mono = new Float32Array(decoded.length);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const channel = decoded.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.numberOfChannels;
  }
  const packet = Math.round(session.context.sampleRate * 0.5);
  for (let i = 0; i < mono.length; i += packet) session.send(mono.subarray(i, i + packet));
  session.endSegment();
  say(`playing ${file.name} (${decoded.duration.toFixed(1)} s)`);
}

async function useMicrophone() {
  const session = await begin();
  const media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  await session.context.audioWorklet.addModule("/live/pcm-worklet.js");
  const node = new AudioWorkletNode(session.context, "pcm-capture");
  const packet = Math.round(session.context.sampleRate * PACKET_SECONDS);
  let pending = [];
  let pendingLength = 0;
  node.port.onmessage = (event) => {
    pending.push(event.data);
    pendingLength += event.data.length;
    if (pendingLength < packet) return;
    const samples = new Float32Array(pendingLength);
    let offset = 0;
    for (const block of pending) { samples.set(block, offset); offset += block.length; }
    pending = [];
    pendingLength = 0;
    session.send(samples);
  };
  session.context.createMediaStreamSource(media).connect(node);
  session.microphone = { media, node };
  say("listening: speak, and the avatar speaks with you");
}

function stop() {
  const session = window.flashheadLive.session;
  if (!session) return;
  if (session.microphone) {
    session.microphone.node.port.onmessage = null;
    session.microphone.media.getTracks().forEach((track) => track.stop());
    session.endSegment();
  }
  session.close();
  window.flashheadLive.session = null;
  $("stop").disabled = true;
  say("stopped");
}

function guarded(action) {
  return () => action().catch((error) => {
    stats.errors.push(String(error.message || error));
    say(`error: ${error.message || error}`);
  });
}

$("controls").addEventListener("submit", (event) => event.preventDefault());
$("play-file").addEventListener("click", guarded(playFile));
$("microphone").addEventListener("click", guarded(useMicrophone));
$("stop").addEventListener("click", stop);
