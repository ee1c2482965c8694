// Small pieces every page uses: loading data, showing errors, labelled fields, tables, usage bars,
// a confirmation dialog and a copy button. Everything a server sent is rendered as text (JSX escapes
// it); nothing here sets HTML.
import type { ComponentChildren, TargetedSubmitEvent } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { usd } from '../format.js';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and whenever a dependency changes; `reload()` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState({ data: null, error: messageOf(error), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload };
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/** A page's heading and its document title. */
export function Page(props: { title: string; intro?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Tollgate`;
  }, [props.title]);
  return (
    <>
      <h1>{props.title}</h1>
      {props.intro ? <p class="intro">{props.intro}</p> : null}
      {props.children}
    </>
  );
}

export function ErrorNote(props: { error: string | null }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      {props.error}
    </p>
  );
}

export function Notice(props: { children: ComponentChildren }) {
  return (
    <p class="notice" role="status">
      {props.children}
    </p>
  );
}

export function Loading(props: { what: string }) {
  return (
    <p class="muted" aria-busy="true">
      Loading {props.what}…
    </p>
  );
}

/** A label and its control, joined by id. */
export function Field(props: { id: string; label: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint ? (
        <small id={`${props.id}-hint`} class="muted">
          {props.hint}
        </small>
      ) : null}
    </div>
  );
}

export interface Column<T> {
  label: string;
  cell: (row: T) => ComponentChildren;
  /** Right-aligned numbers. */
  numeric?: boolean;
}

export function Table<T>(props: {
  caption: string;
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T) => string;
  empty?: string;
}) {
  if (props.rows.length === 0) return <p class="muted">{props.empty ?? 'Nothing here yet.'}</p>;
  return (
    // Focusable and named, so a table wider than the screen can be scrolled with the keyboard.
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must take focus (axe scrollable-region-focusable)
    <section class="table-wrap" aria-label={props.caption} tabIndex={0}>
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.label} scope="col" class={c.numeric ? 'num' : undefined}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={props.rowKey(row)}>
              {props.columns.map((c) => (
                <td key={c.label} class={c.numeric ? 'num' : undefined}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Spent, reserved and remaining of a limit as one bar, with the same figures in words. */
export function UsageBar(props: { label: string; spent: number; reserved?: number; limit: number | null }) {
  const reserved = props.reserved ?? 0;
  if (props.limit === null || props.limit <= 0)
    return (
      <span class="usage-text">
        {usd(props.spent)} spent{reserved > 0 ? `, ${usd(reserved)} reserved` : ''} · no limit
      </span>
    );
  const limit = props.limit;
  const pct = (n: number) => `${Math.min(100, Math.max(0, (n / limit) * 100)).toFixed(1)}%`;
  const remaining = Math.max(0, limit - props.spent - reserved);
  const ratio = (props.spent + reserved) / limit;
  const words = `${usd(props.spent)} spent, ${usd(reserved)} reserved, ${usd(remaining)} remaining of ${usd(limit)}`;
  return (
    <div class="usage">
      <div
        class={`bar${ratio >= 1 ? ' over' : ratio >= 0.8 ? ' near' : ''}`}
        role="img"
        aria-label={`${props.label}: ${words}`}
      >
        <span class="spent" style={{ width: pct(props.spent) }} />
        <span class="reserved" style={{ width: pct(reserved) }} />
      </div>
      <span class="usage-text">{words}</span>
    </div>
  );
}

/** A button that asks first, in a modal dialog that says what will happen. */
export function ConfirmButton(props: {
  label: ComponentChildren;
  title: string;
  message: ComponentChildren;
  confirm: string;
  onConfirm: () => Promise<void> | void;
  danger?: boolean;
  disabled?: boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const titleId = useRef(`confirm-${Math.random().toString(36).slice(2)}`).current;
  async function run(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      dialog.current?.close();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'danger' : undefined}
        disabled={props.disabled}
        onClick={() => {
          setError(null);
          dialog.current?.showModal();
        }}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={titleId}>
        <form onSubmit={run}>
          <h2 id={titleId}>{props.title}</h2>
          <div>{props.message}</div>
          <ErrorNote error={error} />
          <div class="actions">
            <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
              {props.confirm}
            </button>
            <button type="button" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

/** A read-only value (a new key, a snippet) with a copy button. */
export function CopyField(props: { id: string; label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied(true);
    } catch {
      const input = document.getElementById(props.id);
      if (input instanceof HTMLInputElement || input instanceof HTMLTextAreaElement) input.select();
    }
  }
  return (
    <div class="field copy">
      <label for={props.id}>{props.label}</label>
      <div class="copy-row">
        <input id={props.id} readOnly value={props.value} spellcheck={false} autocomplete="off" />
        <button type="button" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}
