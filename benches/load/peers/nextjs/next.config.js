/** @type {import('next').NextConfig} */
module.exports = { poweredByHeader: false, compress: false, eslint: { ignoreDuringBuilds: true } };
