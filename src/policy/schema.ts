/** The Cedar namespace of every Warden entity type and action. */
export const NS = 'Warden';

/**
 * Warden's world as a Cedar schema. Agents are members of their template and provider, users of
 * their groups, tools/resources/prompts of the server that offers them and endpoints of their API,
 * so one policy can speak for a whole template, provider, group, server or API.
 * docs/policy.md documents every type and context field.
 */
export const WARDEN_SCHEMA = `namespace Warden {
  entity Group;
  entity User in [Group] { email?: String, roles?: Set<String> };
  entity Provider { trusted?: Bool };
  entity Template { version?: Long };
  entity Agent in [Template, Provider] {
    status?: String,
    risk_level?: String,
    owner?: String,
    purpose?: String
  };
  entity Server;
  entity Tool in [Server] { risk?: String };
  entity Resource in [Server] { kind?: String, uri?: String };
  entity Prompt in [Server];
  entity Api { host?: String };
  entity Endpoint in [Api] { method?: String, path?: String };
  entity Credential in [Api, Server] { kind?: String };
  entity Scope;
  entity Args tags String;
  entity NumArgs tags Long;

  type Intent = { text: String, task_id: String, goal: String };
  type Delegation = { user?: User, agents: Set<Agent>, depth: Long, grant?: String };
  type Time = { epoch_ms: Long, hour: Long, weekday: Long };
  type Attestation = { verified: Bool, level: String, claims: Set<String> };
  type Approval = { state: String };
  type Http = { method: String, host: String, path: String };
  type RequestContext = {
    intent: Intent,
    args: Args,
    num_args: NumArgs,
    delegation: Delegation,
    risk_score: Long,
    time: Time,
    source_ip?: ipaddr,
    attestation: Attestation,
    approval: Approval,
    scopes: Set<String>,
    http?: Http
  };

  action mcp;
  action call_tool in [mcp] appliesTo { principal: [Agent, User], resource: [Tool], context: RequestContext };
  action list_tools in [mcp] appliesTo { principal: [Agent, User], resource: [Server], context: RequestContext };
  action read_resource in [mcp] appliesTo { principal: [Agent, User], resource: [Resource], context: RequestContext };
  action get_prompt in [mcp] appliesTo { principal: [Agent, User], resource: [Prompt], context: RequestContext };
  action http_request appliesTo { principal: [Agent, User], resource: [Api, Endpoint], context: RequestContext };
  action use_credential appliesTo { principal: [Agent, User], resource: [Credential], context: RequestContext };
  action exchange_credential appliesTo { principal: [Agent], resource: [Credential], context: RequestContext };
  action exchange_token appliesTo { principal: [Agent, User], resource: [Api, Server], context: RequestContext };
  action request_scope appliesTo { principal: [Agent, User], resource: [Scope], context: RequestContext };
}
`;

/** Short entity type names (without the namespace) that the schema declares. */
export const ENTITY_TYPES = [
  'Group',
  'User',
  'Provider',
  'Template',
  'Agent',
  'Server',
  'Tool',
  'Resource',
  'Prompt',
  'Api',
  'Endpoint',
  'Credential',
  'Scope',
] as const;
export type EntityTypeName = (typeof ENTITY_TYPES)[number];

/** Each concrete action: which principal and resource types it applies to, and its groups. */
export const ACTIONS: Record<
  string,
  { principals: EntityTypeName[]; resources: EntityTypeName[]; groups: string[] }
> = {
  call_tool: { principals: ['Agent', 'User'], resources: ['Tool'], groups: ['mcp'] },
  list_tools: { principals: ['Agent', 'User'], resources: ['Server'], groups: ['mcp'] },
  read_resource: { principals: ['Agent', 'User'], resources: ['Resource'], groups: ['mcp'] },
  get_prompt: { principals: ['Agent', 'User'], resources: ['Prompt'], groups: ['mcp'] },
  http_request: { principals: ['Agent', 'User'], resources: ['Api', 'Endpoint'], groups: [] },
  use_credential: { principals: ['Agent', 'User'], resources: ['Credential'], groups: [] },
  exchange_credential: { principals: ['Agent'], resources: ['Credential'], groups: [] },
  exchange_token: { principals: ['Agent', 'User'], resources: ['Api', 'Server'], groups: [] },
  request_scope: { principals: ['Agent', 'User'], resources: ['Scope'], groups: [] },
};

/** Entity attributes the schema declares, per type, with their Cedar types. */
export const ENTITY_ATTRIBUTES: Partial<
  Record<EntityTypeName, Record<string, 'string' | 'long' | 'bool' | 'strings'>>
> = {
  Agent: { status: 'string', risk_level: 'string', owner: 'string', purpose: 'string' },
  User: { email: 'string', roles: 'strings' },
  Provider: { trusted: 'bool' },
  Template: { version: 'long' },
  Tool: { risk: 'string' },
  Resource: { kind: 'string', uri: 'string' },
  Api: { host: 'string' },
  Endpoint: { method: 'string', path: 'string' },
  Credential: { kind: 'string' },
};

/** Parent types the schema allows, per type (`memberOf`). */
export const ENTITY_PARENTS: Partial<Record<EntityTypeName, EntityTypeName[]>> = {
  User: ['Group'],
  Agent: ['Template', 'Provider'],
  Tool: ['Server'],
  Resource: ['Server'],
  Prompt: ['Server'],
  Endpoint: ['Api'],
  Credential: ['Api', 'Server'],
};

/** True when `value` has the Cedar type `kind`. */
export function hasAttributeType(value: unknown, kind: 'string' | 'long' | 'bool' | 'strings'): boolean {
  return (
    (kind === 'string' && typeof value === 'string') ||
    (kind === 'long' && Number.isSafeInteger(value)) ||
    (kind === 'bool' && typeof value === 'boolean') ||
    (kind === 'strings' && Array.isArray(value) && value.every((v) => typeof v === 'string'))
  );
}

/** `Warden::Agent` for `Agent`; full names pass through. */
export function fullType(type: string): string {
  return type.startsWith(`${NS}::`) ? type : `${NS}::${type}`;
}

/** `Agent` for `Warden::Agent`. */
export function shortType(type: string): string {
  return type.startsWith(`${NS}::`) ? type.slice(NS.length + 2) : type;
}

/** True when `type` (short or full) is an entity type of the schema. */
export function isEntityType(type: string): type is EntityTypeName {
  return (ENTITY_TYPES as readonly string[]).includes(shortType(type));
}

/** Escapes a string as a Cedar string literal. */
export function cedarString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A Cedar entity reference literal, e.g. `Warden::Tool::"github/create_issue"`. */
export function entityLiteral(type: string, id: string): string {
  return `${fullType(type)}::${cedarString(id)}`;
}
