// Bar charts with Chart.js (only the parts used are registered, so the bundle stays small). The
// canvas is an image for assistive technology: its label says what it shows, and every chart sits
// beside a table with the same figures.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';
import { usd } from '../format.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

// Distinguishable colours (Okabe–Ito), in order of the series.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

/** An axis tick in dollars: $0.0012, $3.50, $1,200. */
function dollars(value: number): string {
  return usd(Math.round(value * 1_000_000));
}

export interface Series {
  label: string;
  /** One value per label; money in micro-USD when `money` is set. */
  values: readonly number[];
}

export function BarChart(props: {
  label: string;
  labels: readonly string[];
  series: readonly Series[];
  stacked?: boolean;
  money?: boolean;
  horizontal?: boolean;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const scale = props.money ? 1_000_000 : 1;
    const valueAxis = props.horizontal ? 'x' : 'y';
    const config: ChartConfiguration<'bar'> = {
      type: 'bar',
      data: {
        labels: [...props.labels],
        datasets: props.series.map((s, i) => ({
          label: s.label,
          data: s.values.map((v) => v / scale),
          backgroundColor: PALETTE[i % PALETTE.length],
          maxBarThickness: 48,
        })),
      },
      options: {
        indexAxis: props.horizontal ? 'y' : 'x',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          [valueAxis === 'x' ? 'y' : 'x']: { stacked: props.stacked ?? false },
          [valueAxis]: {
            stacked: props.stacked ?? false,
            beginAtZero: true,
            ticks: props.money ? { callback: (value: string | number) => dollars(Number(value)) } : {},
          },
        },
        plugins: {
          legend: { display: props.series.length > 1 || (props.stacked ?? false), position: 'bottom' },
          tooltip: {
            callbacks: props.money
              ? {
                  label: (item) =>
                    `${item.dataset.label ?? ''}: ${usd(Math.round(Number(item.raw) * scale))}`,
                }
              : {},
          },
        },
      },
    };
    const chart = new Chart(canvas.current, config);
    return () => chart.destroy();
  }, [props.labels, props.series, props.stacked, props.money, props.horizontal]);
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={props.label} />
    </div>
  );
}
