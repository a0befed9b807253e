// Confirmation dialogs: say what will happen, run the action, show a refusal in place.
import { ApiError } from './api.js';
import { h } from './dom.js';

/**
 * @typedef {object} ConfirmOptions
 * @property {string} title
 * @property {(string | Node)[]} what  sentences saying what will happen
 * @property {string} confirm  label of the confirming button
 * @property {boolean} [danger]
 * @property {Node[]} [fields]  form controls; their values reach `run` as FormData
 * @property {(form: FormData) => Promise<unknown>} run
 */

const FOCUSABLE =
  'button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

/**
 * Opens a modal dialog; resolves true when the action succeeded, false when cancelled.
 * @param {ConfirmOptions} options
 * @returns {Promise<boolean>}
 */
export function confirmAction(options) {
  const opener = /** @type {HTMLElement | null} */ (document.activeElement);
  const id = `dlg-${Math.random().toString(36).slice(2)}`;
  const error = h('p', { class: 'dialog-error', role: 'alert', tabindex: '-1', hidden: true });
  const confirmButton = h('button', {
    type: 'submit',
    class: options.danger ? 'danger' : 'primary',
    text: options.confirm,
  });
  const cancelButton = h('button', { type: 'button', text: 'Cancel' });
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: `${id}-title`, text: options.title }),
    h('div', { id: `${id}-what`, class: 'dialog-what' }, ...options.what.map((line) => h('p', {}, line))),
    ...(options.fields ?? []),
    error,
    h('div', { class: 'dialog-buttons' }, cancelButton, confirmButton),
  );
  const dialog = /** @type {HTMLDialogElement} */ (
    h('dialog', { 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-what` }, form)
  );
  document.body.append(dialog);

  return new Promise((resolve) => {
    let done = false;
    const finish = (/** @type {boolean} */ ok) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      opener?.focus();
      resolve(ok);
    };
    cancelButton.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    // The modal dialog already makes the page inert; wrapping Tab keeps focus from leaving it at the ends.
    dialog.addEventListener('keydown', (event) => {
      if (event.key !== 'Tab') return;
      const items = [...dialog.querySelectorAll(FOCUSABLE)];
      const first = /** @type {HTMLElement} */ (items[0]);
      const last = /** @type {HTMLElement} */ (items.at(-1));
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!(/** @type {HTMLFormElement} */ (form).reportValidity())) return;
      confirmButton.setAttribute('disabled', '');
      error.hidden = true;
      try {
        await options.run(new window.FormData(/** @type {HTMLFormElement} */ (form)));
        finish(true);
      } catch (err) {
        const refused = err instanceof ApiError && err.status === 409;
        error.textContent = refused
          ? `Refused: ${err.message}`
          : `Failed: ${err instanceof Error ? err.message : String(err)}`;
        error.hidden = false;
        confirmButton.removeAttribute('disabled');
        error.focus();
      }
    });
    dialog.showModal();
    const firstField = /** @type {HTMLElement | null} */ (form.querySelector('input, select, textarea'));
    (firstField ?? cancelButton).focus();
  });
}

/**
 * A labelled form field for a dialog.
 * @param {string} label
 * @param {Record<string, unknown>} attrs attributes of the input (name, type, value...)
 * @param {string} [hint]
 */
export function field(label, attrs, hint) {
  const id = `f-${Math.random().toString(36).slice(2)}`;
  const tag = attrs.type === 'textarea' ? 'textarea' : 'input';
  const control = h(tag, {
    id,
    ...(tag === 'textarea' ? { ...attrs, type: undefined } : attrs),
    ...(hint ? { 'aria-describedby': `${id}-hint` } : {}),
  });
  if (tag === 'textarea' && typeof attrs.value === 'string') control.textContent = attrs.value;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id, text: label }),
    control,
    hint ? h('small', { id: `${id}-hint`, text: hint }) : null,
  );
}

/**
 * @param {string} label
 * @param {string} name
 * @param {[string, string][]} choices value, text
 */
export function select(label, name, choices) {
  const id = `f-${Math.random().toString(36).slice(2)}`;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id, text: label }),
    h('select', { id, name }, ...choices.map(([value, text]) => h('option', { value, text }))),
  );
}
