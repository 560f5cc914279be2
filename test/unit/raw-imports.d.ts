// Vite's `?raw` suffix imports a file as a string (used to test the docs' templates as admins paste them).
declare module "*?raw" {
  const text: string;
  export default text;
}
