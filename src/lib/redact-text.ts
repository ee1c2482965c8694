// Redaction of secret-shaped values in texts that leave the process (error messages): a caller who
// puts a key where an id or a name belongs must not have it echoed back, logged or shown by a CLI.
// The patterns are the formats Tollgate handles; any run of 20+ characters after the prefix is cut.

const SECRET_SHAPES =
  /\b(?:tg[asi]?_[A-Za-z0-9]{12,}|sk-ant-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{12,}|github_pat_[A-Za-z0-9_]{12,}|lin_(?:api|oauth)_[A-Za-z0-9]{12,})/g;

/** The text with every secret-shaped run replaced by `[redacted]`. */
export function redactSecretShapes(text: string): string {
  return text.replace(SECRET_SHAPES, '[redacted]');
}
