// Literal text inside a regular expression (a balancer name, a path prefix, a route id).

/** `text` with every regular-expression metacharacter escaped. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
