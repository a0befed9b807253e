// What an exporter could not express in the target load balancer's configuration, reported to the user.
export interface ExportNote {
  /** Where in the Dayshift config, e.g. clusters.prod-a.members[0] */
  path: string;
  message: string;
}

export interface ExportResult {
  text: string;
  notes: ExportNote[];
  /** The `driver:` section that drives the exported load balancer. */
  driver: Record<string, unknown>;
}
