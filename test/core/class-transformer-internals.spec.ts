/**
 * lib/class-transformer-internals.ts reads class-transformer's metadata store, which the package
 * does not export: this fails when an upgrade moves or changes it (docs/client-internals.md).
 * Without the store the codec still works (every class goes through plainToInstance), so only
 * this spec would notice.
 */
import assert from 'node:assert/strict';
import { Exclude, Expose, Transform, Type } from 'class-transformer';
import { IsInt, IsString, ValidateNested } from 'class-validator';
import { hasTransformerMetadata, transformerMetadataAvailable } from '../../lib/class-transformer-internals';

class Flat {
  @IsString() name!: string;
  @IsInt() n!: number;
}
class Line {
  @IsString() sku!: string;
}
class WithType {
  @ValidateNested() @Type(() => Line) line!: Line;
}
class WithTransform {
  @Transform(({ value }) => String(value).trim()) @IsString() name!: string;
}
class WithExpose {
  @Expose({ name: 'full_name' }) @IsString() name!: string;
}
class WithExclude {
  @IsString() name!: string;
  @Exclude() secret?: string;
}
@Exclude()
class ExcludeAll {
  @Expose() @IsString() name!: string;
}
class Inherits extends WithType {
  @IsString() extra!: string;
}

describe('class-transformer internals: its metadata store', () => {
  it('is found at class-transformer/cjs/storage with the lookups the codec uses', () => {
    assert.equal(transformerMetadataAvailable(), true, 'class-transformer moved or changed its metadata store: every payload now goes through plainToInstance');
  });

  it('tells a flat class from one with @Type, @Transform, @Expose, @Exclude (also inherited)', () => {
    assert.equal(hasTransformerMetadata(Flat, ['name', 'n']), false);
    assert.equal(hasTransformerMetadata(WithType, ['line']), true);
    assert.equal(hasTransformerMetadata(WithTransform, ['name']), true);
    assert.equal(hasTransformerMetadata(WithExpose, ['name']), true);
    assert.equal(hasTransformerMetadata(WithExclude, ['name']), true);
    assert.equal(hasTransformerMetadata(ExcludeAll, ['name']), true);
    assert.equal(hasTransformerMetadata(Inherits, ['line', 'extra']), true);
  });
});
