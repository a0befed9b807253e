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

/** A member in several routes is exported several times: report each thing once. */
export function uniqueNotes(notes: ExportNote[]): ExportNote[] {
  const seen = new Set<string>();
  return notes.filter((n) => {
    const key = `${n.path}\n${n.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
