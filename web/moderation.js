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
];
const ACTION = Object.fromEntries(ACTIONS);

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
      h('p', {}, s.redress.appeal_open ? `Appeal to us, free, until ${when(s.redress.appeal_until_ms)}: a moderator who did not take this decision answers.` : 'The time to appeal to us has passed, or the decision no longer stands.'),
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
  const decide = (notice) => {
    const subject = notice.event.subject;
    const action = h('select', { name: 'action', 'aria-label': 'Action' },
      ACTIONS.filter(([v]) => (v === 'suspend_account') === (subject.kind === 'account') || (v === 'label' && subject.kind !== 'account'))
        .map(([v, label]) => h('option', { value: v }, label)));
    const category = h('select', { name: 'category', 'aria-label': 'Category' },
      CATEGORIES.map(([v, label]) => h('option', { value: v, selected: v === notice.event.category }, label)));
    const ground = h('select', { name: 'ground', 'aria-label': 'Ground' },
      h('option', { value: 'incompatible' }, 'Against the terms'), h('option', { value: 'illegal' }, 'Illegal'));
    const reference = h('input', { name: 'reference', 'aria-label': 'The term or law relied on', placeholder: 'The term or law relied on', required: true, maxlength: 500 });
    const explanation = h('textarea', { name: 'explanation', 'aria-label': 'Why it breaks it', placeholder: 'Why it breaks it (shown to the account)', rows: 2, required: true, maxlength: 2000 });
    const facts = h('textarea', { name: 'facts', 'aria-label': 'The facts relied on', placeholder: 'The facts relied on', rows: 2, required: true, maxlength: 5000 });
    const scope = h('input', { name: 'scope', 'aria-label': 'Countries (empty: everywhere)', placeholder: 'Countries, e.g. DE FR (empty: everywhere)' });
    const error = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'form decide' }, action, category, ground, reference, explanation, facts, scope, error,
      h('div', { class: 'row' },
        h('button', { class: 'btn small', type: 'submit', 'data-testid': `decide-${notice.id}` }, 'Decide'),
        h('button', { class: 'btn small ghost', type: 'button', 'data-testid': `dismiss-${notice.id}`, onclick: async () => {
          const why = explanation.value.trim() || 'We looked at it and found no breach of the law or our terms.';
          try {
            await api('POST', `/moderation/reports/${notice.id}/dismiss`, { explanation: why });
            toast('Dismissed; the notifier is told');
            moderationConsole(main, user, notFound);
          } catch (err) {
            error.textContent = err.message;
          }
        } }, 'No action')));
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
        territorial_scope: scope.value.split(/[\s,]+/).filter(Boolean).map((c) => c.toUpperCase()),
        report: notice.id,
      };
      if (subject.kind === 'account') body.subject.id = subject.id;
      try {
        const d = await api('POST', '/moderation/decisions', body);
        toast(`Decided; statement #${d.id} sent`);
        moderationConsole(main, user, notFound);
      } catch (err) {
        error.textContent = err.message;
      }
    });
    return form;
  };
  const history = (subject) => {
    const box = h('details', { class: 'history' }, h('summary', {}, 'History of this subject'));
    box.addEventListener('toggle', async () => {
      if (!box.open || box.dataset.loaded) return;
      box.dataset.loaded = '1';
      const entries = await api('GET', `/moderation/subjects/${subject.kind}/${encodeURIComponent(subject.id)}`);
      box.append(h('ol', { class: 'log' }, entries.map((e) => h('li', {},
        h('span', { class: 'muted small' }, `#${e.id} · ${when(e.at)} · `),
        e.event.type === 'decision' ? `${ACTION[e.event.action] || e.event.action}: ${e.event.explanation}` : e.event.type === 'notice' ? `Report: ${CATEGORY[e.event.category]} — ${e.event.explanation}` : e.event.type))));
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
    h('p', { class: 'muted' }, 'Every decision sends its statement of reasons to the account at once, and is an entry in the moderation log. Appeals are answered by a moderator who did not decide.'),
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
