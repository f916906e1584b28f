// Types `tsc --noEmit` needs that no package ships: highlight.js's browser ES modules (served by the import map)
// and the AudioWorklet scope pcm-worklet.js runs in.
declare module "highlight.js/core" {
  const hljs: {
    registerLanguage(name: string, language: unknown): void;
    registerAliases(aliases: string[], options: { languageName: string }): void;
    getLanguage(name: string): unknown;
    highlight(code: string, options: { language: string; ignoreIllegals?: boolean }): { value: string };
  };
  export default hljs;
}
declare module "highlight.js/languages/*" {
  const language: unknown;
  export default language;
}
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare const sampleRate: number;
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;
