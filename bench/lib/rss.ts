// Resident set size of a process, from /proc/PID/status (VmRSS), sampled on a timer.
import { readFileSync } from 'node:fs';

/** VmRSS in MB (MiB), or null when the process is gone or /proc is unavailable. */
export function rssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export interface RssSample {
  /** Milliseconds since the sampler started. */
  readonly tMs: number;
  readonly mb: number;
}

export interface RssSummary {
  readonly peakMb: number | null;
  readonly endMb: number | null;
  readonly samples: readonly RssSample[];
}

export interface RssSampler {
  stop(): RssSummary;
}

export function sampleRss(pid: number, intervalMs: number, onSample?: (s: RssSample) => void): RssSampler {
  const started = Date.now();
  const samples: RssSample[] = [];
  const take = (): void => {
    const mb = rssMb(pid);
    if (mb === null) return;
    const sample = { tMs: Date.now() - started, mb };
    samples.push(sample);
    onSample?.(sample);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      const peak = samples.reduce<number | null>((max, s) => (max === null || s.mb > max ? s.mb : max), null);
      return { peakMb: peak, endMb: samples.at(-1)?.mb ?? null, samples };
    },
  };
}
