// The fake Anthropic upstream in a process of its own: `node fake.js [port]`; prints `listening on URL`.
import './guard.js';
import { startFakeUpstream } from '../../test/fake-upstream/index.js';

const port = Number(process.argv[2] ?? '0');
const fake = await startFakeUpstream({ port, host: '127.0.0.1' });

// The fake keeps a record of every request for the tests' assertions; under benchmark load that list
// would grow by millions of entries (and slow the fake down with it), so it is emptied every second.
setInterval(() => {
  fake.served.length = 0;
}, 1_000).unref();

const stop = (): void => {
  setTimeout(() => process.exit(0), 1_000).unref();
  void fake.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdout.write(`listening on ${fake.url}\n`);
