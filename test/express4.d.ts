/** `express4` is an npm alias of express@4 (a dev dependency), so the tests mount router() in both majors. */
declare module 'express4' {
  import express from 'express';
  export default express;
}
