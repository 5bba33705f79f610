// The light build (no Redis clustering) that the Octokit plugins use: one copy in the bundle.
declare module 'bottleneck/light.js' {
  import Bottleneck from 'bottleneck';
  export default Bottleneck;
}
