// The program version, reported by `--version`, health endpoints and logs.
export const VERSION = '0.1.0';
