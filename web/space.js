// The Space page: lobby, listening, speaking and moderation, over one WebSocket that
// reconnects by itself.

import { api, joinTicket } from './api.js';
import { AudioOut, Mic, supportsWebCodecs } from './audio.js';
import { h, initials, mount, toast, until } from './dom.js';
import { count, icon } from './social.js';
import { openDecision, reportButton } from './moderation.js';

const REACTIONS = ['👏', '❤️', '😂', '😮', '😢', '🔥', '💯', '🙌'];
const SPEAKING_DB = -45;
const ROLE_LABEL = { host: 'Host', co_host: 'Co-host', speaker: 'Speaker', listener: 'Listener' };
const RANK = { listener: 0, speaker: 1, co_host: 2, host: 3 };
const PLAYBACK = { auto: 'Automatic', ws: 'WebSocket (lowest delay)', ogg: 'Ogg stream', hls: 'LL-HLS (cacheable)' };
const PLAYBACK_KEY = 'stentor.playback';

/** Seconds as m:ss (or h:mm:ss). */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** What this browser can play: the WebSocket path needs WebCodecs; Ogg an audio element
 * that plays Ogg Opus; HLS either Media Source with Opus in MP4 (hls.js) or native HLS. */
function playable() {
  const probe = document.createElement('audio');
  const mse = typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('audio/mp4; codecs="opus"');
  return {
    ws: supportsWebCodecs,
    ogg: probe.canPlayType('audio/ogg; codecs=opus') !== '',
    hls: mse || probe.canPlayType('application/vnd.apple.mpegurl') !== '',
  };
}

/** The playback path for `choice`: the choice if this browser can take it, else the best
 * it can (WebSocket, then Ogg, then LL-HLS). */
function resolvePlayback(choice) {
  const can = playable();
  if (choice !== 'auto' && can[choice]) return choice;
  return ['ws', 'ogg', 'hls'].find((p) => can[p]) || 'ogg';
}

/** Opens the page of Space `id` in `main`; returns a function that leaves it. */
export async function openSpace(main, id, user) {
  const page = new SpacePage(main, id, user);
  await page.start();
  return () => page.leave();
}

class SpacePage {
  constructor(main, id, user) {
    this.main = main;
    this.id = id;
    this.user = user;
    this.me = user ? user.id : null;
    this.role = 'listener';
    this.state = 'scheduled';
    this.title = '';
    this.startsAt = null;
    this.stage = new Map();
    this.hands = new Set();
    /** Speakers the platform's moderators hold muted. */
    this.held = new Set();
    this.names = new Map();
    this.levels = new Map();
    // The node this client connects to (null: ask where).
    this.node = null;
    this.listeners = 0;
    this.socket = null;
    this.audio = null;
    this.fallback = null;
    this.hls = null;
    this.playback = localStorage.getItem(PLAYBACK_KEY) || 'auto';
    this.mic = null;
    /** Whether the user wants their mic on: survives a reconnect, not a host's mute. */
    this.wantMic = false;
    this.retry = 0;
    this.status = 'connecting';
    this.invited = false;
    this.removed = false;
    this.closed = false;
    this.nextPoll = 0;
  }

  async start() {
    let view;
    try {
      view = await api('GET', `/spaces/${this.id}`);
    } catch (e) {
      mount(this.main, h('div', { class: 'page narrow' },
        h('h1', {}, e.status === 404 ? 'No such Space' : 'Could not load this Space'),
        h('p', { class: 'muted' }, e.message),
        h('p', {}, h('a', { href: '/', 'data-link': true }, 'Back to the live Spaces'))));
      return;
    }
    this.absorb(view);
    this.render();
    if (this.state !== 'ended') this.connect();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  leave() {
    this.closed = true;
    clearInterval(this.timer);
    this.stopMic();
    if (this.socket) this.socket.close(1000);
    if (this.audio) this.audio.close();
    this.stopElement();
  }

  // ---- state -------------------------------------------------------------------------

  absorb(view) {
    this.title = view.title;
    this.state = view.state;
    this.recording = view.recording !== false;
    this.host = view.host;
    this.startsAt = view.starts_at;
    this.listeners = view.listeners;
    this.stage = new Map(view.stage.map(([u, role, muted]) => [String(u), { role, muted }]));
    this.hands = new Set(view.hands.map(String));
    this.held = new Set((view.held || []).map(String));
    for (const [u, name] of Object.entries(view.names || {})) this.names.set(String(u), name);
  }

  name(user) {
    if (Number(user) === 0) return 'the moderators';
    const known = this.names.get(String(user));
    if (known) return known;
    return Number(user) >= 2 ** 52 ? 'guest' : `user ${user}`;
  }

  get isMod() {
    return RANK[this.role] >= RANK.co_host;
  }

  /** The platform's moderators (not the Space's): they may act on any live Space. */
  get isPlatformMod() {
    return !!this.user && (this.user.role === 'moderator' || this.user.role === 'admin') && this.role !== 'host';
  }

  get onStage() {
    return RANK[this.role] >= RANK.speaker;
  }

  // ---- connection --------------------------------------------------------------------

  async connect() {
    if (this.closed) return;
    this.setStatus(this.retry ? 'reconnecting' : 'connecting');
    let ticket;
    try {
      ticket = await joinTicket(this.id, { unseen: this.isPlatformMod && !this.onStage });
    } catch (e) {
      if (e.status === 403) {
        this.removed = true;
        return this.render();
      }
      if (e.status === 410) {
        this.state = 'ended';
        return this.render();
      }
      return this.reconnectLater();
    }
    if (this.closed) return;
    if (!this.node) this.node = await this.pickNode();
    if (this.closed) return;
    const base = new URL(this.node);
    const scheme = base.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${base.host}/api/v1/spaces/${this.id}/ws?ticket=${encodeURIComponent(ticket.ticket)}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') this.onEvent(JSON.parse(e.data));
      else this.onAudio(new Uint8Array(e.data));
    };
    ws.onclose = (e) => {
      if (this.socket !== ws) return;
      this.socket = null;
      this.stopMic();
      if (this.closed) return;
      if (e.code === 4003) {
        this.removed = true;
        return this.render();
      }
      // Sent elsewhere: to the origin (the stage) or to another edge (this one lost its bus).
      if (e.code === 4307 && /^https?:\/\//.test(e.reason)) {
        this.node = e.reason;
        return this.connect();
      }
      // Gone without a word (the node died): ask again where to go.
      if (e.code === 1006) this.node = null;
      if (this.state === 'ended') return this.render();
      if (e.code === 1007 || e.code === 1008 || e.code === 1003) toast(`Disconnected: ${e.reason}`);
      // Overloaded: the server says when to come back.
      const told = e.code === 1013 && /retry in (\d+) s/.exec(e.reason);
      if (told) toast('The server is overloaded; back in a moment');
      this.reconnectLater(told ? Number(told[1]) * 1000 : null);
    };
  }

  /** Where to connect: in a cluster, the edge with the most room (the origin for the
   * stage); on a single node, here. */
  async pickNode() {
    try {
      const where = await api('GET', `/spaces/${this.id}/edges`);
      if (this.onStage && where.origin) return where.origin;
      if (!this.onStage && where.edges.length) return where.edges[0].url;
    } catch {
      // Not known: stay here.
    }
    return location.origin;
  }

  async reconnectLater(afterMs = null) {
    if (this.closed) return;
    this.retry += 1;
    const ceiling = Math.min(10000, 500 * 2 ** Math.min(this.retry, 5));
    const delay = afterMs ?? ceiling / 2 + Math.random() * (ceiling / 2);
    this.setStatus('reconnecting');
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.closed) return;
    // A whole crowd coming back at once (after a restart, a network blip) spreads over the
    // join window the server announces for the crowd it sees waiting.
    try {
      const status = await api('GET', `/spaces/${this.id}/status`);
      const wait = Math.random() * status.join_window_secs * 1000;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    } catch {
      // Not reachable yet: connect() fails and backs off again.
    }
    this.connect();
  }

  send(command) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(command));
      return true;
    }
    toast('Not connected; try again in a moment');
    return false;
  }

  setStatus(status) {
    this.status = status;
    const el = this.main.querySelector('[data-connection]');
    if (el) {
      el.textContent = status === 'reconnecting' ? 'Reconnecting…' : status === 'connecting' ? 'Connecting…' : '';
      el.hidden = status === 'connected';
    }
  }

  onEvent(ev) {
    if (ev.name && ev.user != null) this.names.set(String(ev.user), ev.name);
    const mine = ev.user != null && Number(ev.user) === Number(this.me);
    switch (ev.event) {
      case 'hello':
        this.retry = 0;
        this.me = ev.user;
        this.role = ev.role;
        this.absorb(ev.space);
        if (this.audio) this.audio.reset();
        this.setStatus('connected');
        if (this.wantMic && this.onStage && !this.mic && this.state === 'live') this.toggleMic();
        break;
      case 'started':
        this.state = 'live';
        toast('The Space is live');
        break;
      case 'ended':
        this.state = 'ended';
        this.stopMic();
        break;
      case 'recording_changed':
        this.recording = ev.on;
        toast(ev.on ? 'This Space is being recorded' : 'Recording is off');
        break;
      case 'recording_failed':
        this.recording = false;
        toast(`Recording stopped: ${ev.reason}`);
        break;
      case 'role_changed':
        if (ev.role === 'listener') this.stage.delete(String(ev.user));
        else this.stage.set(String(ev.user), { role: ev.role, muted: this.stage.get(String(ev.user))?.muted ?? false });
        if (this.audio) this.audio.drop(ev.user);
        if (mine) {
          const wasOnStage = this.onStage;
          this.role = ev.role;
          this.invited = false;
          if (this.audio) this.audio.reset();
          if (!this.onStage) {
            this.stopMic();
            this.wantMic = false;
          }
          if (this.onStage && !wasOnStage) toast('You are on stage. Turn on your mic when you are ready.');
          if (!this.onStage && wasOnStage) toast('You are back in the audience');
        }
        break;
      case 'hand_raised':
        this.hands.add(String(ev.user));
        if (this.isMod && !mine) toast(`${this.name(ev.user)} asks to speak`);
        break;
      case 'hand_lowered':
        this.hands.delete(String(ev.user));
        break;
      case 'invited':
        if (mine) {
          this.invited = true;
          toast('You are invited to speak');
        }
        break;
      case 'mute_changed': {
        const member = this.stage.get(String(ev.user));
        if (member) member.muted = ev.muted;
        if (mine && ev.muted && Number(ev.by) !== Number(this.me)) {
          this.stopMic();
          this.wantMic = false;
          toast(`${this.name(ev.by)} muted you`);
        }
        break;
      }
      case 'held':
        if (ev.held) this.held.add(String(ev.user));
        else this.held.delete(String(ev.user));
        if (mine) {
          toast(ev.held
            ? 'The moderators muted you for the rest of this Space; the statement of reasons is in your notifications'
            : 'The moderators lifted your mute: you may unmute');
        }
        break;
      case 'readmitted':
        break;
      case 'removed':
        this.stage.delete(String(ev.user));
        this.hands.delete(String(ev.user));
        break;
      case 'reactions':
        this.burst(ev.counts);
        return;
      case 'levels':
        for (const [u, level] of ev.levels) this.levels.set(String(u), level);
        this.paintLevels();
        return;
      case 'listeners':
        this.listeners = ev.count;
        this.paintCount();
        return;
      case 'post_counts':
        // The host's newest post about this Space: its counts, once a second when they move.
        if (!this.announcement || ev.post_id >= this.announcement.post_id) {
          this.announcement = ev;
          this.paintAnnouncement();
        }
        return;
      case 'refused':
        toast(ev.reason);
        return;
      case 'ticket':
        this.role = ev.role;
        return;
      default:
        return;
    }
    this.render();
  }

  onAudio(bytes) {
    if (!this.audio) return;
    if (bytes[0] === 0x02 && !this.onStage) {
      this.audio.push('mix', bytes.subarray(9));
    } else if (bytes[0] === 0x03) {
      const from = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(1));
      this.audio.push(from, bytes.subarray(13));
    }
  }

  tick() {
    if (this.state !== 'scheduled') return;
    const countdown = this.main.querySelector('[data-countdown]');
    if (countdown && this.startsAt) countdown.textContent = `Starts ${until(this.startsAt - Date.now() / 1000)}`;
    // The lobby count comes from the waiting room's status (cheap, cacheable), asked as
    // often as it says, with jitter.
    if (Date.now() >= this.nextPoll) {
      this.nextPoll = Date.now() + 5000;
      api('GET', `/spaces/${this.id}/status`).then(async (status) => {
        this.nextPoll = Date.now() + status.poll_secs * 1000 * (0.75 + Math.random() / 2);
        this.listeners = status.listeners;
        this.paintCount();
        if (status.state !== this.state && this.state === 'scheduled') {
          this.absorb(await api('GET', `/spaces/${this.id}`));
          this.render();
        }
      }).catch(() => {});
    }
  }

  // ---- audio -------------------------------------------------------------------------

  async listen() {
    if (this.audio || this.fallback) return;
    const path = resolvePlayback(this.playback);
    if (path === 'ogg') {
      this.fallback = h('audio', { src: `/spaces/${this.id}/live.opus`, autoplay: true, controls: true, 'aria-label': 'Live audio', 'data-playback': 'ogg' });
      this.fallback.play().catch(() => {});
      return this.render();
    }
    if (path === 'hls') return this.listenHls();
    try {
      this.audio = await AudioOut.start();
    } catch (e) {
      toast(`Audio could not start: ${e.message}`);
      return;
    }
    this.render();
  }

  /** LL-HLS: natively where the browser plays HLS and has no Media Source (Safari on
   * iPhone), otherwise through hls.js in low-latency mode (loaded only now). */
  async listenHls() {
    const src = `/spaces/${this.id}/live.m3u8`;
    const el = h('audio', { autoplay: true, controls: true, 'aria-label': 'Live audio (LL-HLS)', 'data-playback': 'hls' });
    this.fallback = el;
    if (typeof MediaSource === 'undefined' && el.canPlayType('application/vnd.apple.mpegurl')) {
      el.src = src;
    } else {
      let Hls;
      try {
        ({ default: Hls } = await import('/assets/hls.mjs'));
      } catch (e) {
        this.fallback = null;
        toast(`The HLS player could not load: ${e.message}`);
        return this.render();
      }
      if (this.fallback !== el) return;
      // Low latency: play a little faster (10 %) to get back to PART-HOLD-BACK behind live
      // after a stall, and let a stall add a tenth of a second to the target, not a second.
      const hls = new Hls({
        lowLatencyMode: true, enableWorker: false, backBufferLength: 30,
        maxLiveSyncPlaybackRate: 1.1, liveSyncOnStallIncrease: 0.1,
      });
      window.stentorHlsStalls = 0;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) window.stentorHlsStalls += 1;
        if (data.fatal && data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.fatal) hls.recoverMediaError();
      });
      hls.loadSource(src);
      hls.attachMedia(el);
      this.hls = hls;
      // For people and tests: seconds between the mixer making what plays now and now.
      window.stentorHlsBehind = () => this.hlsBehind();
      window.stentorHlsTarget = () => hls.targetLatency;
      // hls.js catches up by playing faster only with more than a second buffered, which a
      // low-latency stream never has: a player that fell behind (a slow start, a stall)
      // jumps back to its target instead, at most every few seconds.
      this.hlsSync = setInterval(() => {
        const late = hls.latency - hls.targetLatency;
        if (!el.paused && late > 0.35 && hls.liveSyncPosition) el.currentTime = hls.liveSyncPosition;
      }, 3000);
    }
    el.play().catch(() => {});
    this.render();
  }

  /** How far behind live the HLS player plays, in seconds (from the playlist's dates). */
  hlsBehind() {
    const at = this.hls && this.hls.playingDate;
    return at ? (Date.now() - at.getTime()) / 1000 : null;
  }

  stopElement() {
    clearInterval(this.hlsSync);
    if (this.hls) this.hls.destroy();
    this.hls = null;
    if (this.fallback) this.fallback.pause();
    this.fallback = null;
  }

  stopListening() {
    this.stopMic();
    this.wantMic = false;
    if (this.audio) this.audio.close();
    this.audio = null;
    this.stopElement();
    this.render();
  }

  choosePlayback(choice) {
    this.playback = choice;
    localStorage.setItem(PLAYBACK_KEY, choice);
  }

  async toggleMic() {
    if (this.mic) {
      this.stopMic();
      this.wantMic = false;
      this.send({ cmd: 'mute_self' });
      return this.render();
    }
    if (!supportsWebCodecs) return toast('This browser cannot encode audio; try a recent Chrome, Edge or Firefox');
    await this.listen();
    if (!this.audio) return;
    try {
      this.mic = await Mic.start(this.audio, (bytes) => {
        if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(bytes);
      });
    } catch (e) {
      toast(`Microphone unavailable: ${e.message}`);
      return;
    }
    this.wantMic = true;
    this.send({ cmd: 'unmute_self' });
    this.render();
  }

  stopMic() {
    if (this.mic) this.mic.stop();
    this.mic = null;
  }

  // ---- rendering ---------------------------------------------------------------------

  render() {
    const focused = document.activeElement && document.activeElement.dataset.key;
    mount(this.main, h('div', { class: 'page space', 'data-state': this.state, 'data-role': this.role },
      this.header(),
      this.body()));
    this.paintLevels();
    if (focused) {
      const again = this.main.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  header() {
    const badge = { live: h('span', { class: 'badge live' }, 'Live'), scheduled: h('span', { class: 'badge' }, 'Scheduled'), ended: h('span', { class: 'badge' }, 'Ended') }[this.state];
    return h('div', { class: 'space-head' },
      h('div', { class: 'space-title' }, badge,
        this.recording && this.state !== 'ended' ? h('span', { class: 'badge rec', title: 'This Space is recorded', 'data-testid': 'rec' }, 'REC') : null,
        h('h1', {}, this.title)),
      h('p', { class: 'muted', 'data-count': true }, this.countText()),
      h('div', { 'data-announcement-slot': true }, this.announcementView()),
      h('p', { class: 'connection', 'data-connection': true, role: 'status', hidden: this.status === 'connected' || this.state === 'ended' },
        this.status === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'));
  }

  countText() {
    const n = this.listeners;
    if (this.state === 'scheduled') return `${n} waiting`;
    if (this.state === 'live') return `${n} listening`;
    return '';
  }

  paintCount() {
    const el = this.main.querySelector('[data-count]');
    if (el) el.textContent = this.countText();
  }

  /** The post that announced this Space, with its counts moving live. */
  announcementView() {
    const a = this.announcement;
    if (!a) return null;
    const stat = (name, n, label) => h('span', { class: 'announce-stat', title: label, 'data-stat': name }, icon(name), count(n));
    return h('a', { class: 'announce', href: `/p/${a.post_id}`, 'data-link': true, 'data-announcement': a.post_id },
      h('span', { class: 'announce-label' }, 'The announcement'),
      stat('like', a.like_count, 'Likes'),
      stat('repost', a.repost_count, 'Reposts'),
      stat('reply', a.reply_count, 'Replies'));
  }

  paintAnnouncement() {
    const slot = this.main.querySelector('[data-announcement-slot]');
    if (slot) mount(slot, this.announcementView());
  }

  paintLevels() {
    for (const el of this.main.querySelectorAll('[data-speaker]')) {
      const level = this.levels.get(el.dataset.speaker) ?? -90;
      el.classList.toggle('speaking', level > SPEAKING_DB);
    }
  }

  body() {
    if (this.removed) {
      return h('div', { class: 'panel notice' }, h('h2', {}, 'You were removed from this Space'), h('p', {}, h('a', { href: '/', 'data-link': true }, 'Find another Space')));
    }
    if (this.state === 'ended') {
      this.loadReplay();
      return [
        h('div', { class: 'panel notice', 'data-ended': true }, h('h2', {}, 'This Space has ended'), h('p', { class: 'muted' }, this.replay ? 'Its replay is below.' : 'Thanks for listening.'), h('p', {}, h('a', { href: '/', 'data-link': true }, 'Find another Space'))),
        this.replaySection(),
      ];
    }
    return [
      this.state === 'scheduled' ? this.lobby() : null,
      this.stageSection(),
      this.controls(),
      this.isMod ? this.moderation() : null,
      this.isPlatformMod && this.state === 'live' ? this.platformModeration() : null,
      h('div', { class: 'reaction-layer', 'aria-hidden': 'true', 'data-reactions': true }),
    ];
  }

  // ---- replay and clips -------------------------------------------------------------

  async loadReplay() {
    if (this.replayAsked) return;
    this.replayAsked = true;
    try {
      this.replay = await api('GET', `/spaces/${this.id}/recording`);
    } catch {
      this.replay = null;
    }
    this.render();
  }

  /** The replay: a player (seekable), who spoke when (click a turn to hear it), and for
   * the host, trimming the start and deleting it. */
  replaySection() {
    const r = this.replay;
    if (!r) return null;
    if (!this.replayAudio) {
      this.replayAudio = h('audio', { controls: true, preload: 'metadata', src: `${r.ogg}?trim=${r.trimmed_secs}`, 'data-testid': 'replay-audio', 'aria-label': 'Replay' });
    }
    const audio = this.replayAudio;
    const people = new Map();
    for (const t of r.turns) {
      if (!people.has(t.user)) people.set(t.user, { name: t.name || `user ${t.user}`, turns: [] });
      people.get(t.user).turns.push(t);
    }
    const length = Math.max(r.duration_secs, 0.1);
    const rows = [...people.values()].map((p) => h('li', { class: 'turn-row' },
      h('span', { class: 'turn-name' }, p.name),
      h('div', { class: 'turn-track' }, p.turns.map((t) => {
        const b = h('button', { class: 'turn', type: 'button', title: `${p.name}, ${clock(t.from)} to ${clock(t.to)}`, 'aria-label': `Play ${p.name} from ${clock(t.from)}`, onclick: () => { audio.currentTime = t.from; audio.play().catch(() => {}); } });
        // Positions by CSSOM (the page's policy forbids inline style attributes).
        b.style.left = `${(100 * t.from) / length}%`;
        b.style.width = `${Math.max(0.6, (100 * (t.to - t.from)) / length)}%`;
        return b;
      }))));
    const isHost = this.me != null && String(this.host) === String(this.me);
    return h('section', { class: 'panel replay', 'aria-label': 'Replay' },
      h('h2', {}, 'Replay'),
      h('p', { class: 'muted' }, `${clock(r.duration_secs)} recorded`, r.trimmed_secs > 0 ? ` · starts ${clock(r.trimmed_secs)} in` : ''),
      audio,
      rows.length ? h('ul', { class: 'turns', 'aria-label': 'Who spoke when' }, rows) : h('p', { class: 'muted' }, 'Nobody was heard.'),
      h('div', { class: 'row' },
        h('a', { class: 'btn small ghost', href: r.ogg, download: `${this.title}.ogg` }, 'Download'),
        isHost ? h('button', { class: 'btn small ghost', type: 'button', 'data-key': 'trim', 'data-testid': 'trim', onclick: () => this.trimHere() }, 'Start the replay here') : null,
        isHost ? h('button', { class: 'btn small danger', type: 'button', 'data-key': 'delete-recording', 'data-testid': 'delete-recording', onclick: () => this.deleteRecording() }, 'Delete recording') : null));
  }

  async trimHere() {
    const at = this.replay.trimmed_secs + (this.replayAudio ? this.replayAudio.currentTime : 0);
    try {
      await api('PATCH', `/spaces/${this.id}/recording`, { trim_start_secs: Math.round(at * 50) / 50 });
      toast(`The replay now starts ${clock(at)} in`);
    } catch (e) {
      return toast(e.message);
    }
    this.replayAsked = false;
    this.replayAudio = null;
    this.loadReplay();
  }

  async deleteRecording() {
    if (!confirm('Delete this recording for everyone? Clips made from it stay.')) return;
    try {
      await api('DELETE', `/spaces/${this.id}/recording`);
    } catch (e) {
      return toast(e.message);
    }
    this.replay = null;
    this.replayAudio = null;
    toast('The recording is deleted');
    this.render();
  }

  async clip(seconds) {
    try {
      this.lastClip = await api('POST', `/spaces/${this.id}/clips`, { seconds });
      toast(`Clipped the last ${Math.round(this.lastClip.seconds)} s`);
    } catch (e) {
      return toast(e.status === 401 ? 'Sign in to make clips' : e.message);
    }
    this.render();
  }

  lobby() {
    const isHost = this.role === 'host';
    return h('div', { class: 'panel lobby' },
      h('p', { class: 'big-text', 'data-countdown': true }, this.startsAt ? `Starts ${until(this.startsAt - Date.now() / 1000)}` : 'Starting soon'),
      h('p', { class: 'muted' }, isHost
        ? 'Your audience waits here. Start when you are ready; everyone in the lobby hears you at once.'
        : 'Stay on this page: it turns live by itself. Press Listen now so the audio can start the moment it does.'),
      isHost ? h('button', { class: 'btn big', type: 'button', 'data-key': 'start', 'data-testid': 'start', onclick: () => this.send({ cmd: 'start' }) }, 'Go live') : null);
  }

  stageSection() {
    const members = [...this.stage.entries()].sort(([, a], [, b]) => RANK[b.role] - RANK[a.role]);
    return h('section', { class: 'stage', 'aria-label': 'On stage' },
      h('ul', { class: 'speakers' }, members.map(([user, m]) => this.speakerCard(user, m))));
  }

  speakerCard(user, m) {
    const name = this.name(user);
    const isMe = Number(user) === Number(this.me);
    const actions = [];
    if (this.isMod && !isMe && RANK[m.role] < RANK[this.role]) {
      if (!m.muted) actions.push(['Mute', `mute-${name}`, { cmd: 'mute', user: Number(user) }]);
      actions.push(['To audience', `move-${name}`, { cmd: 'move_to_listener', user: Number(user) }]);
      actions.push(['Remove', `remove-${name}`, { cmd: 'remove', user: Number(user) }]);
    } else if (this.role === 'host' && !isMe && !m.muted) {
      actions.push(['Mute', `mute-${name}`, { cmd: 'mute', user: Number(user) }]);
    }
    if (this.role === 'host' && !isMe) {
      if (m.role === 'speaker') actions.push(['Make co-host', `promote-${name}`, { cmd: 'promote', user: Number(user) }]);
      if (m.role === 'co_host') actions.push(['Make speaker', `demote-${name}`, { cmd: 'demote', user: Number(user) }]);
    }
    return h('li', { class: 'speaker', 'data-speaker': user },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(name)),
      h('span', { class: 'speaker-name' }, name, isMe ? ' (you)' : ''),
      h('span', { class: 'speaker-role' }, ROLE_LABEL[m.role],
        this.held.has(String(user)) ? h('span', { class: 'mic-off', title: 'Muted by the platform\'s moderators' }, ' · muted by moderators')
          : m.muted ? h('span', { class: 'mic-off', title: 'Muted' }, ' · muted') : null),
      actions.length
        ? h('div', { class: 'speaker-actions' }, actions.map(([label, key, cmd]) =>
          h('button', { class: 'btn tiny ghost', type: 'button', 'data-key': key, 'data-testid': key, 'aria-label': `${label}: ${name}`, onclick: () => this.send(cmd) }, label)))
        : null);
  }

  controls() {
    const row = [];
    if (this.audio || this.fallback) {
      row.push(h('button', { class: 'btn ghost', type: 'button', 'data-key': 'listen', 'data-testid': 'stop-listening', onclick: () => this.stopListening() }, 'Stop listening'));
    } else {
      row.push(h('button', { class: 'btn big', type: 'button', 'data-key': 'listen', 'data-testid': 'listen', onclick: () => this.listen() }, this.onStage ? 'Hear the stage' : 'Listen'));
      if (!this.onStage) {
        const can = playable();
        row.push(h('label', { class: 'playback' }, 'Play over ',
          h('select', { 'data-key': 'playback', 'data-testid': 'playback', onchange: (e) => this.choosePlayback(e.target.value) },
            Object.entries(PLAYBACK).map(([value, label]) => h('option', {
              value, selected: value === this.playback, disabled: value !== 'auto' && !can[value],
            }, label)))));
      }
    }
    if (this.onStage && this.state === 'live' && this.held.has(String(this.me))) {
      row.push(h('button', { class: 'btn', type: 'button', disabled: true, 'data-testid': 'mic-held', title: 'See the statement of reasons in your notifications' }, 'Muted by the moderators'));
    } else if (this.onStage && this.state === 'live') {
      row.push(h('button', { class: `btn ${this.mic ? 'danger' : ''}`, type: 'button', 'data-key': 'mic', 'data-testid': 'mic', 'aria-pressed': this.mic ? 'true' : 'false', onclick: () => this.toggleMic() }, this.mic ? 'Mute mic' : 'Turn on mic'));
      if (this.role !== 'host') {
        row.push(h('button', { class: 'btn ghost', type: 'button', 'data-key': 'step-down', onclick: () => this.send({ cmd: 'move_to_listener', user: Number(this.me) }) }, 'Leave the stage'));
      }
    }
    if (this.state === 'live' && this.recording && this.me != null) {
      row.push(h('button', { class: 'btn ghost', type: 'button', 'data-key': 'clip', 'data-testid': 'clip', onclick: () => this.clip(30) }, 'Clip last 30 s'));
    }
    if (this.me != null && this.role !== 'host' && this.state !== 'ended' && !this.isPlatformMod) {
      row.push(reportButton({ kind: 'space', id: this.id }, this.user, { label: 'Report', cls: 'btn ghost' }));
    }
    if (this.lastClip) {
      row.push(h('a', { class: 'clip-link', href: this.lastClip.page, 'data-link': true, 'data-testid': 'clip-link' }, 'Your clip'));
    }
    if (this.role === 'host' && this.state !== 'ended') {
      row.push(h('button', { class: 'btn ghost', type: 'button', 'data-key': 'record', 'data-testid': 'record', 'aria-pressed': this.recording ? 'true' : 'false', onclick: () => this.send({ cmd: 'record', on: !this.recording }) },
        this.recording ? 'Stop recording' : 'Record'));
    }
    if (!this.onStage && this.state === 'live' && !this.isPlatformMod) {
      if (this.invited) {
        row.push(h('button', { class: 'btn', type: 'button', 'data-key': 'accept', 'data-testid': 'accept-invite', onclick: () => this.send({ cmd: 'accept_invite' }) }, 'Accept invitation to speak'));
      } else if (this.hands.has(String(this.me))) {
        row.push(h('button', { class: 'btn ghost', type: 'button', 'data-key': 'hand', 'data-testid': 'cancel-request', onclick: () => this.send({ cmd: 'cancel_request' }) }, 'Cancel request'));
      } else {
        row.push(h('button', { class: 'btn', type: 'button', 'data-key': 'hand', 'data-testid': 'request', onclick: () => this.send({ cmd: 'request_to_speak' }) }, 'Request to speak'));
      }
    }
    return h('section', { class: 'controls', 'aria-label': 'Your controls' },
      h('div', { class: 'row' }, row),
      this.fallback,
      this.state === 'live'
        ? h('div', { class: 'reactions', role: 'group', 'aria-label': 'Send a reaction' },
          REACTIONS.map((emoji) => h('button', { class: 'reaction', type: 'button', 'data-key': `react-${emoji}`, 'aria-label': `React ${emoji}`, onclick: () => this.send({ cmd: 'react', emoji }) }, emoji)))
        : null);
  }

  moderation() {
    const hands = [...this.hands];
    const invite = h('form', { class: 'invite' },
      h('label', { for: 'invite-handle' }, 'Invite to speak'),
      h('div', { class: 'row' },
        h('input', { id: 'invite-handle', name: 'handle', placeholder: 'handle', autocomplete: 'off', 'data-key': 'invite-handle' }),
        h('button', { class: 'btn small', type: 'submit', 'data-key': 'invite' }, 'Invite')));
    invite.addEventListener('submit', async (e) => {
      e.preventDefault();
      const handle = new FormData(invite).get('handle').trim().toLowerCase();
      if (!handle) return;
      try {
        const target = await api('GET', `/users/${encodeURIComponent(handle)}`);
        if (this.send({ cmd: 'invite', user: target.id })) toast(`Invited @${target.handle}`);
      } catch (err) {
        toast(err.status === 404 ? `No user @${handle}` : err.message);
      }
    });
    return h('section', { class: 'panel moderation', 'aria-label': 'Moderation' },
      h('h2', {}, 'Requests to speak'),
      hands.length
        ? h('ul', { class: 'hands' }, hands.map((user) => {
          const name = this.name(user);
          return h('li', {},
            h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(name)),
            h('span', { class: 'grow' }, name),
            h('button', { class: 'btn small', type: 'button', 'data-key': `approve-${name}`, 'data-testid': `approve-${name}`, onclick: () => this.send({ cmd: 'approve', user: Number(user) }) }, 'Approve'),
            h('button', { class: 'btn small ghost', type: 'button', 'data-key': `deny-${name}`, onclick: () => this.send({ cmd: 'deny', user: Number(user) }) }, 'Deny'),
            h('button', { class: 'btn small ghost', type: 'button', 'data-key': `remove-hand-${name}`, onclick: () => this.send({ cmd: 'remove', user: Number(user) }) }, 'Remove'));
        }))
        : h('p', { class: 'muted' }, 'No raised hands.'),
      this.state === 'live' ? invite : null,
      h('div', { class: 'row' },
        this.state === 'live' ? h('button', { class: 'btn ghost', type: 'button', 'data-key': 'mute-all', 'data-testid': 'mute-all', onclick: () => this.send({ cmd: 'mute_all' }) }, 'Mute all') : null,
        this.role === 'host'
          ? h('button', {
            class: 'btn danger', type: 'button', 'data-key': 'end', 'data-testid': 'end',
            onclick: () => { if (confirm('End this Space for everyone?')) this.send({ cmd: 'end' }); },
          }, 'End Space')
          : null));
  }

  /** The platform's moderators' controls: each measure is a decision with its statement of
   * reasons, taken in a dialog. They listen like anyone else, in no list. */
  platformModeration() {
    const subject = { kind: 'space', id: this.id };
    const decide = (title, preset) => openDecision(title, { subject, preset, onDone: () => this.render() });
    const members = [...this.stage.entries()].sort(([, a], [, b]) => RANK[b.role] - RANK[a.role]);
    return h('section', { class: 'panel moderation platform', 'aria-label': 'Platform moderation', 'data-testid': 'platform-moderation' },
      h('h2', {}, 'Platform moderation'),
      h('p', { class: 'muted small' }, 'You listen unseen: you are in no list, not in the count of listeners, and your listening is not recorded. Every measure sends its statement of reasons to the person it affects.'),
      h('ul', { class: 'hands' }, members.map(([user, m]) => {
        const name = this.name(user);
        return h('li', {},
          h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(name)),
          h('span', { class: 'grow' }, name, h('span', { class: 'muted small' }, ` · ${ROLE_LABEL[m.role]}`)),
          this.held.has(String(user)) ? h('span', { class: 'muted small' }, 'held muted')
            : h('button', { class: 'btn small ghost', type: 'button', 'data-key': `pm-mute-${name}`, 'data-testid': `pm-mute-${name}`, onclick: () => decide(`Mute @${name}`, { action: 'mute_speaker', speaker: user }) }, 'Mute…'),
          m.role === 'host' ? null
            : h('button', { class: 'btn small ghost', type: 'button', 'data-key': `pm-remove-${name}`, 'data-testid': `pm-remove-${name}`, onclick: () => decide(`Remove @${name}`, { action: 'remove_speaker', speaker: user }) }, 'Remove…'));
      })),
      h('div', { class: 'row' },
        h('button', { class: 'btn danger small', type: 'button', 'data-key': 'pm-end', 'data-testid': 'pm-end', onclick: () => decide('End this Space', { action: 'end_space' }) }, 'End Space…')));
  }

  burst(counts) {
    const layer = this.main.querySelector('[data-reactions]');
    if (!layer) return;
    for (const [emoji, n] of counts) {
      for (let i = 0; i < Math.min(n, 12); i++) {
        const el = h('span', { class: 'floater' }, emoji);
        el.style.left = `${10 + Math.random() * 80}%`;
        el.style.animationDelay = `${i * 80}ms`;
        layer.append(el);
        setTimeout(() => el.remove(), 2600 + i * 80);
      }
      if (n > 12) {
        const tag = h('span', { class: 'floater count' }, `${emoji} ×${n}`);
        tag.style.left = `${40 + Math.random() * 20}%`;
        layer.append(tag);
        setTimeout(() => tag.remove(), 2600);
      }
    }
  }
}
