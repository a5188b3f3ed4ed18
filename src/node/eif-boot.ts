/**
 * Placeholder until the EIF module lands.
 * @module
 */
export interface EifBootRequest {
  eifPath?: string | undefined;
  parentInstanceId?: string | undefined;
  parentRoleArn?: string | undefined;
  debug: boolean;
}

export async function eifBootOptions(_req: EifBootRequest): Promise<{ pcrs: Map<number, Uint8Array>; instanceId?: string }> {
  throw new Error('EIF boot is not available yet');
}
