// Reads a secret from --from-env, --from-file or standard input (without echo on a terminal).
import { open } from 'node:fs/promises';
import { AppError } from '../lib/errors.js';
import type { Io } from './io.js';

const MAX_SECRET_BYTES = 64 * 1024;

export interface SecretSource {
  fromEnv?: string;
  fromFile?: string;
}

export async function readSecret(io: Io, source: SecretSource, prompt: string): Promise<string> {
  if (source.fromEnv && source.fromFile)
    throw new AppError('invalid_input', 'use either --from-env or --from-file, not both');
  let text: string;
  if (source.fromEnv) {
    const value = io.env[source.fromEnv];
    if (!value)
      throw new AppError('invalid_input', `environment variable ${source.fromEnv} is unset or empty`);
    text = value;
  } else if (source.fromFile) {
    text = await readBounded(source.fromFile);
  } else if (io.stdin.isTTY) {
    text = await promptHidden(io, prompt);
  } else {
    text = await readStream(io.stdin);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length === 0) {
    throw new AppError(
      'invalid_input',
      'no secret was given: pipe it on standard input, or use --from-env VAR or --from-file PATH',
    );
  }
  return secret;
}

async function readBounded(path: string): Promise<string> {
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new AppError('invalid_input', `cannot read ${path}: ${error.code ?? 'error'}`);
  });
  try {
    const buffer = Buffer.alloc(MAX_SECRET_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_SECRET_BYTES)
      throw new AppError('invalid_input', `${path} is larger than ${MAX_SECRET_BYTES} bytes`);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > MAX_SECRET_BYTES)
      throw new AppError('invalid_input', `standard input is larger than ${MAX_SECRET_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Prompts on stderr and reads one line with echo off (raw mode), so the secret never shows on screen. */
function promptHidden(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode?.(true);
    stdin.resume();
    const done = (error?: AppError) => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      io.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new AppError('invalid_input', 'cancelled'));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else value += char;
        if (value.length > MAX_SECRET_BYTES)
          return done(new AppError('invalid_input', 'the secret is too long'));
      }
    };
    stdin.on('data', onData);
  });
}
