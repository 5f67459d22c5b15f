export { sinkApiSchema, sinkPatchSchema, sinkStatusApiSchema, sinkToApi, statusToApi } from './api.ts';
export {
  Exporter,
  type ExporterDeps,
  type ExporterOptionsInput,
  exporterOptionsSchema,
  type SinkStatus,
} from './exporter.ts';
export { cefExtensionEscape, cefHeaderEscape, toCef } from './formats/cef.ts';
export { CLASSIFICATION, classify, OCSF_CLASSES, severityOf } from './formats/classify.ts';
export { ECS_VERSION, toEcs } from './formats/ecs.ts';
export { EXPORT_FORMATS, type ExportFormat, type FormattedEvent, formatEvent } from './formats/format.ts';
export { OCSF_VERSION, toOcsf } from './formats/ocsf.ts';
export { type ProductInfo, WARDEN_PRODUCT } from './formats/product.ts';
export { registerExportMetrics } from './metrics.ts';
export { exportMigrations } from './migrations.ts';
export {
  parseSinkDefinition,
  SECRET_PATHS,
  type SinkDefinition,
  type SinkDefinitionInput,
  type SinkType,
  sinkDefinitionSchema,
} from './sink-definition.ts';
export type { RunnerState, SinkHealth } from './sink-runner.ts';
export { rewrapExportSecrets, type SinkView } from './sink-store.ts';
export { KafkaTransport } from './sinks/kafka-transport.ts';
export {
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  webhookSignature,
} from './sinks/webhook-transport.ts';
export {
  DEFAULT_ENTERPRISE_NUMBER,
  headerField,
  octetFrame,
  octetFrameText,
  SYSLOG_LIMITS,
  SyslogFormatter,
  sdEscape,
  syslogMessage,
  syslogTimestamp,
  wardenSdId,
} from './syslog-message.ts';
