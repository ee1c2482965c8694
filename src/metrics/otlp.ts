// The OTLP/HTTP metrics push (claude.otel_endpoint + /v1/metrics every claude.otel_interval_s). The
// OpenTelemetry SDK is imported only when an endpoint is configured. Its periodic reader collects from
// a producer that reads the store's cumulative totals, so nothing runs per request and a collector
// that is down or hangs loses nothing: the next export that gets through carries every total (the
// temporality is cumulative); the exporter's own retries are bounded, and so is what is in flight.
import type { Attributes, HrTime } from '@opentelemetry/api';
import type {
  MetricData,
  MetricProducer,
  PushMetricExporter,
  ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Logger } from '../observability/logger.js';
import { GENAI, GENAI_SCHEMA_URL, OTLP } from './names.js';
import { type HistogramSeries, type MetricsStore, USAGE } from './store.js';

export interface OtlpOptions {
  /** The base URL; /v1/metrics is appended. */
  readonly endpoint: string;
  readonly intervalMs: number;
  readonly version: string;
  readonly logger: Logger;
  /**
   * One export's time limit, retries included (default: half the interval, at most 10 s): an export
   * that hangs ends before the next is due, so a dead collector does not halve the cadence.
   */
  readonly timeoutMs?: number;
}

export interface OtlpPush {
  /** Exports once more (bounded by `timeoutMs`) and stops. */
  close(timeoutMs?: number): Promise<void>;
  /** Exports now (tests). */
  flush(): Promise<void>;
}

/** Exports allowed in flight at once (a hanging collector holds at most this many payloads). */
const CONCURRENT_EXPORTS = 2;

export async function startOtlpPush(store: MetricsStore, options: OtlpOptions): Promise<OtlpPush> {
  const [sdk, { OTLPMetricExporter, AggregationTemporalityPreference }, { resourceFromAttributes }, api] =
    await Promise.all([
      import('@opentelemetry/sdk-metrics'),
      import('@opentelemetry/exporter-metrics-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/api'),
    ]);
  const timeoutMs = options.timeoutMs ?? Math.max(1, Math.min(Math.floor(options.intervalMs / 2), 10_000));
  const resource = resourceFromAttributes({ 'service.name': 'tollgate', 'service.version': options.version });
  const inner = new OTLPMetricExporter({
    url: `${options.endpoint}/v1/metrics`,
    timeoutMillis: timeoutMs,
    concurrencyLimit: CONCURRENT_EXPORTS,
    temporalityPreference: AggregationTemporalityPreference.CUMULATIVE,
  });
  // Failures are logged once per outage (the next success says so), never per attempt.
  let failing = false;
  const exporter: PushMetricExporter = {
    export: (metrics, done) =>
      inner.export(metrics, (result) => {
        if (result.code !== 0 && !failing) {
          failing = true;
          options.logger.warn(
            { endpoint: options.endpoint },
            'OTLP metrics export failed; totals are sent again next time',
          );
        } else if (result.code === 0 && failing) {
          failing = false;
          options.logger.info({ endpoint: options.endpoint }, 'OTLP metrics export works again');
        }
        done(result);
      }),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
    selectAggregationTemporality: (type) => inner.selectAggregationTemporality(type),
  };

  const startTime = hrTime(store.startedAt);
  const producer: MetricProducer = {
    async collect() {
      const resourceMetrics: ResourceMetrics = {
        resource,
        scopeMetrics: [
          {
            scope: { name: 'tollgate', version: options.version, schemaUrl: GENAI_SCHEMA_URL },
            metrics: buildMetrics(store, startTime, hrTime(Date.now()), sdk, api.ValueType),
          },
        ],
      };
      return { resourceMetrics, errors: [] };
    },
  };
  const reader = new sdk.PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: options.intervalMs,
    exportTimeoutMillis: Math.min(timeoutMs, options.intervalMs),
    metricProducers: [producer],
  });
  const provider = new sdk.MeterProvider({ resource, readers: [reader] });

  return {
    flush: () => reader.forceFlush({ timeoutMillis: timeoutMs }),
    async close(limitMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, limitMs);
        timer.unref();
      });
      // shutdown exports once (forceFlush) and then stops the reader and the exporter.
      await Promise.race([provider.shutdown({ timeoutMillis: limitMs }).catch(() => {}), late]);
      clearTimeout(timer);
    },
  };
}

function hrTime(ms: number): HrTime {
  return [Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
}

type Sdk = typeof import('@opentelemetry/sdk-metrics');
type ValueTypes = typeof import('@opentelemetry/api').ValueType;

/** The store's totals as OTLP metric data: every series cumulative since the process started. */
export function buildMetrics(
  store: MetricsStore,
  startTime: HrTime,
  endTime: HrTime,
  sdk: Pick<Sdk, 'AggregationTemporality' | 'DataPointType'>,
  valueType: ValueTypes,
): MetricData[] {
  const CUMULATIVE = sdk.AggregationTemporality.CUMULATIVE;
  const sum = (
    name: string,
    unit: string,
    description: string,
    value: (v: Float64Array) => number,
    double = false,
  ): MetricData => ({
    descriptor: { name, unit, description, valueType: double ? valueType.DOUBLE : valueType.INT },
    aggregationTemporality: CUMULATIVE,
    dataPointType: sdk.DataPointType.SUM,
    isMonotonic: true,
    dataPoints: [...store.usage.series.values()].map((s) => {
      const [model = '', team = '', user = ''] = s.labels;
      return { startTime, endTime, attributes: { model, user, team }, value: value(s.values) };
    }),
  });
  const col = (c: number) => (v: Float64Array) => v[c] as number;
  const histogram = (
    name: string,
    unit: string,
    description: string,
    series: Iterable<HistogramSeries>,
    attributes: (s: HistogramSeries) => Attributes,
  ): MetricData => ({
    descriptor: { name, unit, description, valueType: valueType.DOUBLE },
    aggregationTemporality: CUMULATIVE,
    dataPointType: sdk.DataPointType.HISTOGRAM,
    dataPoints: [...series].map((s) => ({
      startTime,
      endTime,
      attributes: attributes(s),
      value: {
        buckets: { boundaries: [...s.bounds], counts: Array.from(s.data.subarray(0, s.bounds.length + 1)) },
        sum: s.sum,
        count: s.count,
      },
    })),
  });
  const genai = (model: string): Attributes => ({
    [GENAI.operationName]: GENAI.chat,
    [GENAI.providerName]: GENAI.anthropic,
    [GENAI.requestModel]: model,
  });
  return [
    sum(
      OTLP.tokensInput,
      '{token}',
      'Input tokens (not read from or written to the prompt cache).',
      col(USAGE.input),
    ),
    sum(OTLP.tokensOutput, '{token}', 'Output tokens.', col(USAGE.output)),
    sum(OTLP.tokensCacheRead, '{token}', 'Input tokens read from the prompt cache.', col(USAGE.cacheRead)),
    sum(
      OTLP.tokensCacheCreation,
      '{token}',
      'Input tokens written to the prompt cache (5 m and 1 h).',
      (v) => (v[USAGE.cacheWrite5m] as number) + (v[USAGE.cacheWrite1h] as number),
    ),
    sum(
      OTLP.cost,
      'USD',
      'Cost recorded in the usage ledger.',
      (v) => (v[USAGE.costMicro] as number) / 1_000_000,
      true,
    ),
    histogram(
      GENAI.tokenUsage,
      '{token}',
      'Number of input and output tokens used.',
      store.genaiTokens.series.values(),
      (s) => ({
        ...genai(s.labels[0] ?? ''),
        [GENAI.tokenType]: s.labels[1] ?? '',
      }),
    ),
    histogram(
      GENAI.operationDuration,
      's',
      'GenAI operation duration.',
      store.genaiDuration.series.values(),
      (s) => {
        const error = s.labels[1] ?? '';
        return error === ''
          ? genai(s.labels[0] ?? '')
          : { ...genai(s.labels[0] ?? ''), [GENAI.errorType]: error };
      },
    ),
  ];
}
