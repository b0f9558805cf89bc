// Who is using the console. The backend says whether auth is on through
// `GET /api/session`:
//   200 {"name","role"}      signed in (a cookie session); `"auth": false` in the
//                            answer means auth is off and there is nothing to sign out of
//   401 unauthorized         auth is on and this browser is not signed in
//   404 route_not_found      a backend without client auth: everyone is admin
// Signing in posts the token once to `POST /api/session`; the backend answers with an
// HttpOnly cookie. The token is never stored by the page.

import { ApiError, call, paths } from './api.js';
import { h, fill } from './dom.js';

/** The current session: {auth, signedIn, name, role}. */
export async function detectSession() {
  try {
    const who = await call('GET', paths.session, undefined, { quiet401: true });
    return { auth: who?.auth !== false, signedIn: true, name: who?.name ?? null, role: who?.role };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      return { auth: true, signedIn: false, name: null, role: null };
    }
    if (error instanceof ApiError && error.status === 404) {
      return { auth: false, signedIn: true, name: null, role: 'admin' };
    }
    throw error;
  }
}

/** Ends the cookie session. */
export async function signOut() {
  await call('DELETE', paths.session);
}

/**
 * Shows the sign-in form in `main`; calls `onSignedIn(session)` once the backend has
 * accepted a token. `notice` explains why (for example a session that ended).
 */
export function showSignIn(main, { notice, onSignedIn }) {
  document.title = 'Sign in · Switchyard';
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help',
  });
  const error = h('div', { class: 'form-error', id: 'signin-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'button primary', text: 'Sign in' });
  const form = h(
    'form',
    { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', text: 'Sign in' }),
    h('p', {
      class: 'muted',
      text: 'This backend asks for an access token. Paste the token you were given.',
    }),
    notice ? h('p', { class: 'signin-notice', text: notice }) : null,
    h('div', { class: 'field' }, h('label', { for: 'token', text: 'Access token' }), input),
    h('p', {
      class: 'hint',
      id: 'token-help',
      text: 'The token is sent once; the browser keeps only a session cookie.',
    }),
    error,
    h('div', { class: 'form-actions' }, button),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.replaceChildren();
    button.disabled = true;
    try {
      const who = await call('POST', paths.session, { token: input.value }, { quiet401: true });
      input.value = '';
      onSignedIn({ auth: true, signedIn: true, name: who?.name ?? null, role: who?.role });
    } catch (failure) {
      error.append(
        h('strong', { class: 'notice-code', text: failure.code ?? 'error' }),
        h('span', { text: ` ${failure.message}` }),
      );
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, h('section', { class: 'signin-page' }, form));
  input.focus();
}
