import { Gauge, type Registry } from 'prom-client';
import type { Exporter, SinkStatus } from './exporter.ts';

const HEALTH_STATES = ['healthy', 'degraded', 'failing', 'disabled'] as const;

/**
 * Registers the exporter's Prometheus gauges: lag in events and seconds, health (one series per
 * state, 1 for the current one), and events delivered since start, per sink. One status read serves
 * all gauges of a scrape.
 */
export function registerExportMetrics(registry: Registry, exporter: Exporter): void {
  let cached: { at: number; value: Promise<SinkStatus[]> } | undefined;
  const statuses = (): Promise<SinkStatus[]> => {
    const now = Date.now();
    if (!cached || now - cached.at > 500) cached = { at: now, value: exporter.status() };
    return cached.value;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: SinkStatus) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of await statuses()) fill(this, s);
      },
    });
  gauge('warden_export_lag_events', 'Ledger events not yet confirmed delivered, per sink', ['sink'], (g, s) =>
    g.set({ sink: s.name }, s.lag.events),
  );
  gauge(
    'warden_export_lag_seconds',
    'Age of the oldest ledger event not yet confirmed delivered, per sink',
    ['sink'],
    (g, s) => g.set({ sink: s.name }, s.lag.seconds),
  );
  gauge('warden_export_sink_health', 'Sink health: 1 for the current state', ['sink', 'state'], (g, s) => {
    for (const state of HEALTH_STATES) g.set({ sink: s.name, state }, s.health === state ? 1 : 0);
  });
  gauge(
    'warden_export_delivered_events',
    'Events delivered by this node since it started, per sink',
    ['sink'],
    (g, s) => g.set({ sink: s.name }, s.delivered),
  );
}
