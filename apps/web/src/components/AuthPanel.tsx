import { useState, type FormEvent } from 'react';
import { ApiError, login, register, type Session } from '../lib/api.ts';

type Mode = 'login' | 'register';

const USERNAME_HINT = '3–32 characters: a–z, 0–9, _';
const PASSWORD_HINT = 'At least 8 characters';

function messageFor(err: unknown, mode: Mode): string {
  if (!(err instanceof ApiError)) return 'Something went wrong; try again';
  if (err.code === 'network_error') return 'The server cannot be reached; try again in a moment';
  if (mode === 'login' && err.status === 401) return 'Wrong username or password';
  if (err.status === 409) return 'That username is taken';
  if (err.status === 429) return 'Too many attempts; wait a minute and try again';
  return err.message;
}

/** Log in or sign up; both submit the same two fields. */
export function AuthPanel({
  notice,
  onAuthenticated,
}: {
  notice: string | null;
  onAuthenticated: (s: Session) => void;
}) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState<Mode | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function submit(mode: Mode) {
    if (busy) return;
    const name = username.trim().toLowerCase();
    if (!name || !password) {
      setError('Enter a username and a password');
      return;
    }
    setBusy(mode);
    setError(null);
    try {
      const session = mode === 'login' ? await login(name, password) : await register(name, password);
      onAuthenticated(session);
    } catch (err) {
      setError(messageFor(err, mode));
      setBusy(null);
    }
  }

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    void submit('login');
  };

  return (
    <section className="panel auth" aria-label="Account">
      <h2 className="panel-title">Trade SOL with paper money</h2>
      <p className="muted small">Sign up to get 10,000 USD of paper money, or log in to continue.</p>
      {notice && <p className="notice small">{notice}</p>}
      <form className="auth-form" onSubmit={onSubmit} noValidate>
        <label className="field">
          <span className="field-label">Username</span>
          <input
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            maxLength={32}
            aria-describedby="username-hint"
          />
          <span className="field-hint" id="username-hint">
            {USERNAME_HINT}
          </span>
        </label>
        <label className="field">
          <span className="field-label">Password</span>
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            maxLength={128}
            aria-describedby="password-hint"
          />
          <span className="field-hint" id="password-hint">
            {PASSWORD_HINT}
          </span>
        </label>
        {error && (
          <p className="form-error small" role="alert">
            {error}
          </p>
        )}
        <div className="auth-actions">
          <button type="submit" className="btn btn-primary" disabled={busy !== null}>
            {busy === 'login' ? 'Logging in…' : 'Log in'}
          </button>
          <button
            type="button"
            className="btn btn-secondary"
            disabled={busy !== null}
            onClick={() => void submit('register')}
          >
            {busy === 'register' ? 'Signing up…' : 'Sign up'}
          </button>
        </div>
      </form>
    </section>
  );
}
