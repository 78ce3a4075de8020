/**
 * Topic patterns, one syntax for every transport: segments split on `.`, `*` is exactly one
 * segment, `#` zero or more. Adapters translate to their broker's syntax (AMQP uses the same;
 * MQTT `+` and `#`, see docs/wire-format.md).
 */

/** True when the pattern contains a wildcard segment. */
export function isPattern(pattern: string): boolean {
  return pattern.split('.').some((s) => s === '*' || s === '#');
}

/** Problems with a type or pattern, empty when it is valid. */
export function checkPattern(pattern: string): string[] {
  if (!pattern) return ['is empty'];
  const problems: string[] = [];
  for (const seg of pattern.split('.')) {
    if (seg === '') problems.push('has an empty segment');
    else if (seg !== '*' && seg !== '#' && !/^[A-Za-z0-9_-]+$/.test(seg)) {
      problems.push(`segment "${seg}" may hold only letters, digits, "_" and "-", or be "*" or "#"`);
    }
  }
  return problems;
}

/** Does `topic` (a concrete message type) match `pattern`? */
export function matchTopic(pattern: string, topic: string): boolean {
  if (pattern === topic) return true;
  return matchSegments(pattern.split('.'), 0, topic.split('.'), 0);
}

function matchSegments(p: string[], pi: number, t: string[], ti: number): boolean {
  while (pi < p.length) {
    const seg = p[pi];
    if (seg === '#') {
      if (pi === p.length - 1) return true;
      for (let k = ti; k <= t.length; k++) if (matchSegments(p, pi + 1, t, k)) return true;
      return false;
    }
    if (ti >= t.length) return false;
    if (seg !== '*' && seg !== t[ti]) return false;
    pi++;
    ti++;
  }
  return ti === t.length;
}

/** A compiled matcher, for hot paths (the memory broker routes every publish through these). */
export function topicMatcher(pattern: string): (topic: string) => boolean {
  if (!isPattern(pattern)) return (topic) => topic === pattern;
  const p = pattern.split('.');
  return (topic) => matchSegments(p, 0, topic.split('.'), 0);
}
