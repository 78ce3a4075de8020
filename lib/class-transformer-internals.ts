/**
 * The one place the core reaches into class-transformer beyond its public API
 * (docs/client-internals.md): its metadata store, which the package exports no path to
 * (`class-transformer/cjs/storage` is the file its own CommonJS build uses). Feature check: the
 * store loads and has the five lookups used here. Fallback: without it every class counts as
 * needing the transformer (plainToInstance for every payload: the same result, slower).
 * test/core/class-transformer-internals.spec.ts fails when an upgrade removes what this relies on.
 */
import { TransformationType } from 'class-transformer';

/** The lookups of class-transformer's MetadataStorage (0.5) that needsTransformer uses. */
interface TransformerMetadata {
  getStrategy(target: Function): 'excludeAll' | 'exposeAll' | 'none';
  getExposedMetadatas(target: Function): unknown[];
  getExcludedMetadatas(target: Function): unknown[];
  findTypeMetadata(target: Function, propertyName: string): unknown;
  findTransformMetadatas(target: Function, propertyName: string, transformationType: TransformationType): unknown[];
}

const LOOKUPS = ['getStrategy', 'getExposedMetadatas', 'getExcludedMetadatas', 'findTypeMetadata', 'findTransformMetadatas'] as const;

function load(): TransformerMetadata | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const store = (require('class-transformer/cjs/storage') as { defaultMetadataStorage?: Partial<TransformerMetadata> }).defaultMetadataStorage;
    return store && LOOKUPS.every((name) => typeof store[name] === 'function') ? (store as TransformerMetadata) : undefined;
  } catch {
    return undefined;
  }
}

const metadata = load();

/** True when class-transformer's metadata store was found (else needsTransformer always says true). */
export function transformerMetadataAvailable(): boolean {
  return metadata !== undefined;
}

/**
 * Whether class-transformer has anything to do for `cls` (@Type, @Transform, @Expose, @Exclude
 * on it or its ancestors) given its validated `properties`. True when that cannot be known.
 */
export function hasTransformerMetadata(cls: Function, properties: Iterable<string>): boolean {
  const s = metadata;
  if (!s) return true;
  if (s.getStrategy(cls) !== 'none' || s.getExposedMetadatas(cls).length > 0 || s.getExcludedMetadatas(cls).length > 0) return true;
  for (const p of properties) {
    if (s.findTypeMetadata(cls, p) || s.findTransformMetadatas(cls, p, TransformationType.PLAIN_TO_CLASS).length > 0) return true;
  }
  return false;
}
