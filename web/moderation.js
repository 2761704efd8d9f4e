// Trust and safety in the app: the report dialog, the statement of reasons with its appeal,
// and the moderators' console (the queue, a subject's history, decisions, appeals).

import { api } from './api.js';
import { h, mount, toast } from './dom.js';

/** The Transparency Database's categories, as people read them. */
export const CATEGORIES = [
  ['scams_and_fraud', 'Scams and fraud'],
  ['illegal_or_harmful_speech', 'Illegal or harmful speech'],
  ['cyber_violence', 'Cyber violence (harassment, stalking, threats)'],
  ['cyber_violence_against_women', 'Cyber violence against women'],
  ['negative_effects_on_civic_discourse_or_elections', 'Harm to civic discourse or elections'],
  ['violence', 'Violence'],
  ['self_harm', 'Self-harm'],
  ['protection_of_minors', 'Protection of minors'],
  ['risk_for_public_security', 'Risk for public security'],
  ['data_protection_and_privacy_violations', 'Privacy and personal data'],
  ['intellectual_property_infringements', 'Intellectual property'],
  ['consumer_information', 'Consumer information'],
  ['unsafe_and_prohibited_products', 'Unsafe or prohibited products'],
  ['animal_welfare', 'Animal welfare'],
  ['other_violation_tc', 'Another breach of the terms'],
  ['not_specified_notice', 'Illegal, of another kind'],
];
const CATEGORY = Object.fromEntries(CATEGORIES);

const ACTIONS = [
  ['label', 'Label it, with the reason shown'],
  ['restrict_interaction', 'Restrict interaction (no likes, replies, reposts)'],
  ['remove', 'Remove it'],
  ['suspend_account', 'Suspend the account'],
  ['demote', 'Demote it (kept out of discovery; followers still see it)'],
  ['mute_speaker', 'Mute a speaker (held until the Space ends)'],
  ['remove_speaker', 'Remove a speaker from the Space'],
  ['end_space', 'End the live Space (its recording withheld)'],
];
const ACTION = Object.fromEntries(ACTIONS);

/** Actions as a report counts them. */
const COUNTED = {
  label: 'Labelled', demote: 'Demoted', restrict_interaction: 'Interaction restricted', remove: 'Removed',
  suspend_account: 'Account suspended', mute_speaker: 'Speaker muted', remove_speaker: 'Speaker removed', end_space: 'Space ended',
};

/** The actions that apply to a kind of subject, the most likely first. */
const ACTIONS_FOR = {
  post: ['remove', 'label', 'restrict_interaction', 'demote'],
  account: ['suspend_account'],
  space: ['mute_speaker', 'remove_speaker', 'end_space', 'demote', 'remove', 'label'],
  clip: ['remove', 'label'],
};

const SUBJECT = { post: 'post', account: 'account', space: 'Space', clip: 'clip' };

function when(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function subjectLink(subject) {
  const href = { post: `/p/${subject.id}`, space: `/s/${subject.id}`, clip: `/c/${subject.id}` }[subject.kind];
  const label = `${SUBJECT[subject.kind]} ${subject.kind === 'account' ? `#${subject.id}` : subject.id}`;
  return href ? h('a', { href, 'data-link': true }, label) : label;
}

/** Opens the report dialog for `subject` ({kind, id, at_ms?}). */
export function openReport(subject, user) {
  const category = h('select', { id: 'r-category', name: 'category', required: true },
    h('option', { value: '' }, 'Choose what is wrong'),
    CATEGORIES.map(([v, label]) => h('option', { value: v }, label)));
  const explanation = h('textarea', { id: 'r-explanation', name: 'explanation', rows: 4, maxlength: 5000, required: true });
  const contact = user ? null : h('input', { id: 'r-contact', name: 'contact', required: true, autocomplete: 'name email' });
  const faith = h('input', { id: 'r-faith', type: 'checkbox', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  const send = h('button', { class: 'btn', type: 'submit' }, 'Send report');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'r-title' });
  const form = h('form', { class: 'form' },
    h('h2', { id: 'r-title' }, `Report this ${SUBJECT[subject.kind]}`),
    subject.at_ms != null ? h('p', { class: 'muted small' }, `At ${Math.floor(subject.at_ms / 60000)}:${String(Math.floor(subject.at_ms / 1000) % 60).padStart(2, '0')} into the Space`) : null,
    h('label', { for: 'r-category' }, 'Category'), category,
    h('label', { for: 'r-explanation' }, 'What is wrong, and where exactly'), explanation,
    contact ? [h('label', { for: 'r-contact' }, 'Your name and email'), contact] : null,
    h('label', { class: 'check', for: 'r-faith' }, faith, ' I believe in good faith that this report is accurate and complete.'),
    error,
    h('div', { class: 'row' }, send, h('button', { class: 'btn ghost', type: 'button', onclick: () => dialog.close() }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const body = { subject, category: category.value, explanation: explanation.value, good_faith: faith.checked };
      if (contact) body.contact = contact.value;
      const ack = await api('POST', '/reports', body);
      dialog.close();
      toast(`Report #${ack.id} received. You will be told what is decided.`);
    } catch (err) {
      error.textContent = err.message;
      send.disabled = false;
    }
  });
  dialog.append(form);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  category.focus();
}

/** A button that opens the report dialog. */
export function reportButton(subject, user, { label = 'Report', cls = 'btn small ghost' } = {}) {
  return h('button', { class: cls, type: 'button', 'data-testid': `report-${subject.kind}`, onclick: () => openReport(typeof subject.at === 'function' ? { ...subject, at_ms: subject.at() } : subject, user) }, label);
}

/**
 * The form that takes a decision on `subject`, with every item its statement of reasons needs:
 * the action (`preset.action` chosen), on a Space the speaker (`preset.speaker`), the category,
 * the ground and the term or law, the reasons shown to the account, the facts, the countries.
 * Answering `report`, it offers "No action" too. `onDone(decision)` after it is taken.
 */
export function decisionForm({ subject, report = null, category: chosen = null, preset = {}, countries = false, onDone, onCancel = null }) {
  const uid = `d${Math.random().toString(36).slice(2, 8)}`;
  const action = h('select', { name: 'action', 'aria-label': 'Action' },
    ACTIONS_FOR[subject.kind].map((v) => h('option', { value: v, selected: v === preset.action }, ACTION[v])));
  const speaker = h('select', { name: 'speaker', 'aria-label': 'Speaker' });
  const speakerRow = h('label', { class: 'stack', hidden: true }, h('span', { class: 'muted small' }, 'Speaker'), speaker);
  const showSpeaker = () => { speakerRow.hidden = !['mute_speaker', 'remove_speaker'].includes(action.value); };
  action.addEventListener('change', showSpeaker);
  showSpeaker();
  if (subject.kind === 'space') {
    // Who is on stage now (the host first), to choose from.
    api('GET', `/spaces/${encodeURIComponent(subject.id)}`).then((view) => {
      const rank = { host: 0, co_host: 1, speaker: 2 };
      const stage = [...view.stage].sort((a, b) => rank[a[1]] - rank[b[1]]);
      speaker.replaceChildren(...stage.map(([id, role]) => {
        const name = view.names[id] || `#${id}`;
        return h('option', { value: name, selected: String(id) === String(preset.speaker) || name === preset.speaker }, `@${name} (${role.replace('_', '-')})`);
      }));
      if (!stage.length) speaker.append(h('option', { value: '' }, 'Nobody is on stage'));
    }).catch(() => speaker.replaceChildren(h('option', { value: '' }, 'The Space could not be read')));
  }
  const category = h('select', { name: 'category', 'aria-label': 'Category', required: true },
    chosen ? null : h('option', { value: '' }, 'Choose the category'),
    CATEGORIES.map(([v, label]) => h('option', { value: v, selected: v === chosen }, label)));
  const ground = h('select', { name: 'ground', 'aria-label': 'Ground' },
    h('option', { value: 'incompatible' }, 'Against the terms'), h('option', { value: 'illegal' }, 'Illegal'));
  const reference = h('input', { name: 'reference', 'aria-label': 'The term or law relied on', placeholder: 'The term or law relied on', required: true, maxlength: 500 });
  const explanation = h('textarea', { name: 'explanation', 'aria-label': 'Why it breaks it', placeholder: 'Why it breaks it (shown to the account)', rows: 2, required: true, maxlength: 2000 });
  const facts = h('textarea', { name: 'facts', 'aria-label': 'The facts relied on', placeholder: 'The facts relied on', rows: 2, required: true, maxlength: 5000 });
  // Limited to some countries: removing or labelling a post, where the server knows where its
  // visitors are.
  const scope = countries && subject.kind === 'post'
    ? h('input', { name: 'scope', 'aria-label': 'Countries (empty: everywhere)', placeholder: 'Only in these countries, e.g. DE AT (empty: everywhere)' })
    : null;
  const scopeRow = scope ? h('label', { class: 'stack' }, h('span', { class: 'muted small' }, 'Where (removal or label only)'), scope) : null;
  const showScope = () => { if (scopeRow) scopeRow.hidden = !['remove', 'label'].includes(action.value); };
  action.addEventListener('change', showScope);
  showScope();
  const error = h('p', { class: 'error', role: 'alert' });
  const decideButton = h('button', { class: 'btn small', type: 'submit', 'data-testid': report ? `decide-${report}` : `decide-${uid}` }, 'Decide');
  const dismiss = report == null ? null : h('button', { class: 'btn small ghost', type: 'button', 'data-testid': `dismiss-${report}`, onclick: async () => {
    const why = explanation.value.trim() || 'We looked at it and found no breach of the law or our terms.';
    try {
      await api('POST', `/moderation/reports/${report}/dismiss`, { explanation: why });
      toast('Dismissed; the notifier is told');
      onDone(null);
    } catch (err) {
      error.textContent = err.message;
    }
  } }, 'No action');
  const form = h('form', { class: 'form decide' }, action, speakerRow, category, ground, reference, explanation, facts,
    scopeRow || h('p', { class: 'muted small' }, 'It applies everywhere.'), error,
    h('div', { class: 'row' }, decideButton, dismiss,
      onCancel ? h('button', { class: 'btn small ghost', type: 'button', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      subject: { kind: subject.kind, id: subject.id, at_ms: subject.at_ms },
      action: action.value,
      category: category.value,
      ground: ground.value,
      [ground.value === 'illegal' ? 'legal_ground' : 'contractual_ground']: reference.value,
      explanation: explanation.value,
      facts: facts.value,
      report,
    };
    if (!speakerRow.hidden) body.speaker = speaker.value;
    if (scopeRow && !scopeRow.hidden) body.territorial_scope = scope.value.split(/[\s,]+/).filter(Boolean).map((c) => c.toUpperCase());
    decideButton.disabled = true;
    try {
      const d = await api('POST', '/moderation/decisions', body);
      toast(`Decided; statement #${d.id} sent`);
      onDone(d);
    } catch (err) {
      error.textContent = err.message;
      decideButton.disabled = false;
    }
  });
  return form;
}

/** Opens `decisionForm(options)` in a dialog, titled `title`. */
export function openDecision(title, options) {
  const dialog = h('dialog', { class: 'dialog', 'aria-label': title });
  const form = decisionForm({
    ...options,
    onDone: (d) => { dialog.close(); if (options.onDone) options.onDone(d); },
    onCancel: () => dialog.close(),
  });
  dialog.append(h('h2', {}, title), form);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

/** The public transparency report: per category and ground, over a period, from the log. */
export async function transparencyPage(main, notFound) {
  const params = new URLSearchParams(location.search);
  const query = ['from', 'to'].filter((k) => params.get(k)).map((k) => `${k}=${encodeURIComponent(params.get(k))}`).join('&');
  let report;
  try {
    report = await api('GET', `/transparency/report${query ? `?${query}` : ''}`);
  } catch {
    notFound();
    return;
  }
  const sum = (k) => report.rows.reduce((n, r) => n + r[k], 0);
  const pct = (x) => `${Math.round(x * 1000) / 10} %`;
  const cell = (v, label) => h('td', { 'data-label': label }, v);
  mount(main, h('div', { class: 'page transparency' },
    h('h1', {}, 'Transparency report'),
    h('p', { class: 'muted' }, `From ${report.from} to ${report.to} (exclusive), recomputed from the moderation log on every request. Every decision's statement of reasons, without personal data, is published at `,
      h('a', { href: '/api/v1/transparency/statements' }, '/api/v1/transparency/statements'), '.'),
    h('div', { class: 'stats row' },
      [['notices', 'Reports'], ['decisions', 'Decisions'], ['appeals', 'Appeals'], ['reversals', 'Reversals']].map(([k, label]) =>
        h('div', { class: 'panel stat', 'data-total': k }, h('strong', {}, String(sum(k))), h('span', { class: 'muted small' }, label)))),
    report.rows.length
      ? h('table', { class: 'report' },
        h('thead', {}, h('tr', {}, ['Category', 'Ground', 'Reports', 'Decisions', 'By action', 'Automated', 'Median hours to decide', 'Appeals', 'Reversals', 'Reversal rate'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, report.rows.map((r) => h('tr', { 'data-row': `${r.category}/${r.ground || ''}` },
          cell(CATEGORY[r.category] || r.category, 'Category'),
          cell(r.ground === 'illegal' ? 'Illegal' : r.ground === 'incompatible' ? 'Against the terms' : '—', 'Ground'),
          cell(String(r.notices), 'Reports'),
          cell(String(r.decisions), 'Decisions'),
          cell(Object.entries(r.by_action || {}).filter(([, n]) => n > 0).map(([a, n]) => `${COUNTED[a] || a}: ${n}`).join(', ') || '—', 'By action'),
          cell(pct(r.automated_share), 'Automated'),
          cell(r.median_hours_to_decision == null ? '—' : String(Math.round(r.median_hours_to_decision * 100) / 100), 'Median hours to decide'),
          cell(String(r.appeals), 'Appeals'),
          cell(String(r.reversals), 'Reversals'),
          cell(pct(r.reversal_rate), 'Reversal rate')))))
      : h('p', { class: 'muted empty' }, 'Nothing was reported or decided in this period.'),
    h('p', {}, h('a', { class: 'btn small ghost', href: `/api/v1/transparency/report?format=csv${query ? `&${query}` : ''}`, download: 'transparency-report.csv' }, 'Download CSV'))));
}

function section(title, ...body) {
  return h('section', { class: 'panel statement-part' }, h('h2', {}, title), body);
}

/** The statement of reasons page, with the appeal. */
export async function statementPage(main, user, id, notFound) {
  if (!user) return false;
  let s;
  try {
    s = await api('GET', `/statements/${id}`);
  } catch {
    notFound();
    return true;
  }
  const r = s.restriction;
  const standing = { in_effect: 'In effect', expired: 'Ended', reversed: 'Reversed' }[s.standing];
  const ground = s.ground.kind === 'illegal'
    ? [h('p', {}, h('strong', {}, 'Illegal content. '), 'Legal ground: ', s.ground.legal_ground), h('p', {}, s.ground.explanation)]
    : [h('p', {}, h('strong', {}, 'Against our terms. '), 'The term: ', s.ground.contractual_ground), h('p', {}, s.ground.explanation)];
  const source = { notice: 'a report by someone who used the report form', trusted_flagger: 'a report by a trusted flagger', own_initiative: 'our own review' }[s.facts.source];
  const automation = s.automation.decision === 'not_automated' ? 'A person decided.' : s.automation.decision === 'partially' ? 'A person decided with automated help.' : 'The decision was automated.';
  const appealForm = () => {
    const text = h('textarea', { id: 'a-text', rows: 4, maxlength: 5000, required: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const send = h('button', { class: 'btn', type: 'submit', 'data-testid': 'appeal' }, 'Send appeal');
    const form = h('form', { class: 'form' },
      h('label', { for: 'a-text' }, 'Why is this decision wrong?'), text, error, send);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      send.disabled = true;
      try {
        await api('POST', `/statements/${id}/appeal`, { text: text.value });
        toast('Appeal sent. A moderator who did not take this decision will answer.');
        await statementPage(main, user, id, notFound);
      } catch (err) {
        error.textContent = err.message;
        send.disabled = false;
      }
    });
    return form;
  };
  mount(main, h('div', { class: 'page narrowish statement', 'data-statement': id },
    h('p', { class: 'muted small' }, `Statement of reasons #${s.id} · ${s.puid}`),
    h('h1', {}, ACTION[r.action] ? r.description : r.action),
    h('p', {}, h('span', { class: `badge ${s.standing === 'in_effect' ? 'live' : ''}`, 'data-testid': 'standing' }, standing)),
    section('What was restricted',
      h('p', {}, 'About: ', subjectLink(r.subject), '.'),
      h('p', {}, 'Since ', when(r.from_ms), r.until_ms ? `, until ${when(r.until_ms)}` : ', until it is reversed', '.'),
      h('p', {}, 'Where: ', r.territorial_scope.length ? r.territorial_scope.join(', ') : 'everywhere', '.')),
    section('Why', ground, h('p', { class: 'muted' }, 'Category: ', CATEGORY[s.facts.category] || s.facts.category)),
    section('The facts', h('p', {}, s.facts.facts), h('p', { class: 'muted' }, `This came from ${source}.`)),
    section('Automation', h('p', {}, s.automation.detection ? 'The content was found by automated means. ' : 'The content was not found by automated means. ', automation)),
    section('What you can do',
      h('p', {}, !s.redress.internal_complaint ? 'This platform, a small enterprise, takes no appeals itself; the ways below stay open to you.'
        : s.redress.appeal_open ? `Appeal to us, free, until ${when(s.redress.appeal_until_ms)}: a moderator who did not take this decision answers.` : 'The time to appeal to us has passed, or the decision no longer stands.'),
      h('p', {}, 'Take it to a certified out-of-court dispute settlement body: ', h('a', { href: s.redress.out_of_court, rel: 'noopener', target: '_blank' }, 'the list')),
      h('p', {}, s.redress.court)),
    s.appeals.length ? section('Your appeals', h('ul', { class: 'appeals' }, s.appeals.map((a) => h('li', {},
      h('p', {}, a.text),
      h('p', { class: 'muted' }, a.outcome ? `${a.outcome === 'reversed' ? 'Reversed' : 'Upheld'}: ${a.explanation}` : 'Waiting for a moderator'))))) : null,
    s.can_appeal ? section('Appeal', appealForm()) : null));
  return true;
}

/** The moderators' console: the queue with each subject's history, decisions, appeals. */
export async function moderationConsole(main, user, notFound) {
  let queue;
  let appeals;
  try {
    [queue, appeals] = await Promise.all([api('GET', '/moderation/queue'), api('GET', '/moderation/appeals')]);
  } catch {
    notFound();
    return;
  }
  const reload = () => moderationConsole(main, user, notFound);
  const decide = (notice) => decisionForm({
    subject: notice.event.subject, report: notice.id, category: notice.event.category, countries: !!user.countries, onDone: reload,
  });
  const history = (subject) => {
    const box = h('details', { class: 'history' }, h('summary', {}, 'History of this subject and notes'));
    const line = (e) => h('li', {},
      h('span', { class: 'muted small' }, `#${e.id} · ${when(e.at)} · `),
      e.event.type === 'decision' ? `${ACTION[e.event.action] || e.event.action}: ${e.event.explanation}`
        : e.event.type === 'notice' ? `Report: ${CATEGORY[e.event.category]} — ${e.event.explanation}`
          : e.event.type === 'note' ? h('span', { class: 'note' }, 'Note: ', e.event.text)
            : e.event.type);
    const list = h('ol', { class: 'log' });
    const text = h('textarea', { 'aria-label': 'A note for the other moderators', placeholder: 'A note for the other moderators (never shown to the account)', rows: 2, maxlength: 5000 });
    const error = h('p', { class: 'error', role: 'alert' });
    const load = async () => {
      const entries = await api('GET', `/moderation/subjects/${subject.kind}/${encodeURIComponent(subject.id)}`);
      list.replaceChildren(...entries.map(line));
    };
    const add = h('form', { class: 'form note-form' }, text, error,
      h('div', { class: 'row' }, h('button', { class: 'btn small ghost', type: 'submit' }, 'Add note')));
    add.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/moderation/notes', { subject: { kind: subject.kind, id: subject.id }, text: text.value });
        text.value = '';
        error.textContent = '';
        await load();
      } catch (err) {
        error.textContent = err.message;
      }
    });
    box.append(list, add);
    box.addEventListener('toggle', () => {
      if (!box.open || box.dataset.loaded) return;
      box.dataset.loaded = '1';
      load().catch((err) => { error.textContent = err.message; });
    });
    return box;
  };
  const answer = (a) => {
    const explanation = h('textarea', { 'aria-label': 'Reasons for the answer', placeholder: 'Reasons for the answer (shown to the account)', rows: 2, required: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const send = async (outcome) => {
      try {
        await api('POST', `/appeals/${a.id}/decision`, { outcome, explanation: explanation.value });
        toast(outcome === 'reversed' ? 'Reversed; the restriction is lifted' : 'Upheld');
        moderationConsole(main, user, notFound);
      } catch (err) {
        error.textContent = err.message;
      }
    };
    return h('div', { class: 'form' }, explanation, error, h('div', { class: 'row' },
      h('button', { class: 'btn small', type: 'button', 'data-testid': `reverse-${a.id}`, onclick: () => send('reversed') }, 'Reverse'),
      h('button', { class: 'btn small ghost', type: 'button', 'data-testid': `uphold-${a.id}`, onclick: () => send('upheld') }, 'Uphold')));
  };
  mount(main, h('div', { class: 'page console' },
    h('h1', {}, 'Moderation'),
    h('p', { class: 'muted' }, 'Every decision sends its statement of reasons to the account at once, and is an entry in the moderation log. Appeals are answered by a moderator who did not decide. ',
      h('a', { href: '/transparency', 'data-link': true }, 'The transparency report')),
    h('h2', {}, `Reports waiting (${queue.length})`),
    queue.length ? h('ul', { class: 'queue' }, queue.map((n) => h('li', { class: 'panel notice-card', 'data-notice': n.id },
      h('p', { class: 'row spread' },
        h('strong', {}, CATEGORY[n.event.category] || n.event.category),
        n.event.trusted ? h('span', { class: 'badge' }, 'Trusted flagger') : null),
      h('p', {}, 'About: ', subjectLink(n.event.subject), n.event.subject.at_ms != null ? ` at ${Math.round(n.event.subject.at_ms / 1000)} s` : '', h('span', { class: 'muted small' }, ` · #${n.id} · ${when(n.at)}`)),
      h('blockquote', {}, n.event.explanation),
      history(n.event.subject),
      decide(n)))) : h('p', { class: 'muted empty' }, 'No reports are waiting.'),
    h('h2', {}, `Appeals waiting (${appeals.length})`),
    appeals.length ? h('ul', { class: 'queue' }, appeals.map((a) => h('li', { class: 'panel notice-card', 'data-appeal': a.id },
      h('p', {}, h('a', { href: `/statements/${a.decision}`, 'data-link': true }, `Statement #${a.decision}`), ` · ${ACTION[a.action] || a.action}`),
      h('blockquote', {}, a.text),
      a.mine ? h('p', { class: 'muted' }, 'You took this decision: another moderator answers.') : answer(a)))) : h('p', { class: 'muted empty' }, 'No appeals are waiting.')));
}
