/**
 * AsyncAPI 3.0 documents from the decorators, imported as `courier-bus/asyncapi` (what
 * `courier asyncapi` runs); `class-validator-jsonschema` is an optional peer dependency the app
 * installs. docs/operations.md shows the command.
 */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('class-validator-jsonschema', 'courier-bus/asyncapi');

export { asyncApiDocument, courierClassesOf } from './asyncapi-document';
export type { AsyncApiOptions, AsyncApiService, AsyncApiDocument } from './asyncapi-document';
