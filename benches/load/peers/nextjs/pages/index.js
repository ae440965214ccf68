// Never reached: the middleware rewrites every request to the origin. `next build` needs one page.
export default function Home() {
  return null;
}
