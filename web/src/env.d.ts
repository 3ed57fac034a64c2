// CSS imports are bundled by esbuild into the hashed stylesheet.
declare module '*.css';
