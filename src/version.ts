/** pg-dr's version, recorded in every manifest. Kept equal to package.json by a unit test. */
export const VERSION = '0.1.0';
